import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { waitFor } from './ports.js';

/** The repository root, from the compiled helper at dist/test/helpers/. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** Deep-merges `over` into `base` (plain objects only; lists are replaced). */
export function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && typeof base[k] === 'object' ? merge(base[k] as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

export interface ServiceProcess {
  child: ChildProcess;
  configPath: string;
  output(): string;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL (kill -9) and wait for exit. */
  kill9(): Promise<void>;
}

/**
 * Writes `config` as YAML into `dir`, starts `node main --config …`, and waits until `readyUrl` answers 200 (failing
 * with the process's output if it exits first).
 */
export async function startService(dir: string, name: string, main: string, config: Record<string, unknown>, readyUrl: string): Promise<ServiceProcess> {
  mkdirSync(dir, { recursive: true });
  const configPath = join(dir, `${name}.yaml`);
  writeFileSync(configPath, stringify(config));
  const child = spawn(process.execPath, [main, '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  let dead = false;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    dead = true;
    resolve(code);
  }));
  await waitFor(`${name} ${readyUrl}`, async () => {
    if (dead) throw new Error(`${name} exited during start:\n${out}`);
    const r = await fetch(readyUrl).catch(() => null);
    return r?.status === 200;
  }, 15_000);
  return {
    child, configPath,
    output: () => out,
    stop: async () => {
      if (!dead) child.kill('SIGTERM');
      return exited;
    },
    kill9: async () => {
      if (!dead) child.kill('SIGKILL');
      await exited;
    },
  };
}
