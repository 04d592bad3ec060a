import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freePort, waitFor } from './ports.js';

/** The repository root, from the compiled helper at dist/test/helpers/. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const agentMain = join(repoRoot, 'dist', 'agent', 'main.js');

export interface AgentProcess {
  child: ChildProcess;
  mqttPort: number;
  httpPort: number;
  dataDir: string;
  configPath: string;
  /** Everything the agent printed (pino JSON lines). */
  output(): string;
  metrics(): Promise<string>;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL (kill -9) and wait for exit. */
  kill9(): Promise<void>;
}

/** Deep-merges `over` into `base` (plain objects only). */
function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && typeof base[k] === 'object' ? merge(base[k] as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

/**
 * Starts `otlp-edge-agent` as a child process on free loopback ports with a config written to `dir`, and waits
 * until /readyz answers 200. `overrides` are merged into the config (YAML keys as DESIGN.md names them).
 */
export async function startAgent(dir: string, overrides: Record<string, unknown> = {}, reuse?: { mqttPort: number; httpPort: number }): Promise<AgentProcess> {
  const mqttPort = reuse?.mqttPort ?? (await freePort());
  const httpPort = reuse?.httpPort ?? (await freePort());
  const dataDir = join(dir, 'data');
  const config = merge({
    agent: { id: 'gw-test', data_dir: dataDir },
    mqtt: { broker: { tcp: { host: '127.0.0.1', port: mqttPort }, allow_anonymous: true } },
    http: { host: '127.0.0.1', port: httpPort },
    uplink: { endpoints: [] },
    log: { level: 'info' },
  }, overrides);
  const configPath = join(dir, 'agent.yaml');
  mkdirSync(dir, { recursive: true });
  writeFileSync(configPath, stringify(config));
  const child = spawn(process.execPath, [agentMain, '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let dead = false;
  void exited.then(() => (dead = true));
  await waitFor('agent /readyz', async () => {
    if (dead) throw new Error(`agent exited during start:\n${out}`);
    const r = await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => null);
    return r?.status === 200;
  }, 15_000);
  return {
    child, mqttPort, httpPort, dataDir, configPath,
    output: () => out,
    metrics: async () => (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text(),
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

/** Runs `otlp-edge-agent buffer dump --config …` and returns the parsed OTLP/JSON lines. */
export function bufferDump(configPath: string): unknown[] {
  const r = spawnSync(process.execPath, [agentMain, 'buffer', 'dump', '--config', configPath], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`buffer dump failed (${r.status}): ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** Value of one Prometheus sample (`name{labels}`) in /metrics text, 0 when absent. */
export function metricValue(text: string, sample: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(sample + ' ')) return Number(line.slice(sample.length + 1));
  }
  return 0;
}
