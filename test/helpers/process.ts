import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startBinary } from '../../runtime/process/child.js';

/** The repository root, from the compiled helper at dist/test/helpers/. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** Deep-merges `over` into `base` (plain objects only; lists are replaced). */
export function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && typeof base[k] === 'object'
        ? merge(base[k] as Record<string, unknown>, v as Record<string, unknown>)
        : v;
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
export async function startService(
  dir: string,
  name: string,
  main: string,
  config: Record<string, unknown>,
  readyUrl: string,
): Promise<ServiceProcess> {
  const c = await startBinary(dir, name, main, config, readyUrl, { timeoutMs: 15_000 });
  return { child: c.child, configPath: c.configPath, output: c.output, stop: () => c.stop(), kill9: c.kill9 };
}
