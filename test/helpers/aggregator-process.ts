import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { repoRoot } from './agent-process.js';
import { freePort, waitFor } from './ports.js';

export const aggregatorMain = join(repoRoot, 'dist', 'aggregator', 'main.js');

export interface AggregatorProcess {
  child: ChildProcess;
  grpcPort: number;
  apiPort: number;
  dataDir: string;
  output(): string;
  /** GET on the API; resolves with status and parsed JSON (or text). */
  get(path: string): Promise<{ status: number; body: any }>;
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && typeof base[k] === 'object' ? merge(base[k] as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

/** Starts `otlp-edge-aggregator` on free loopback ports (or the given ones) and waits for /readyz. */
export async function startAggregator(dir: string, overrides: Record<string, unknown> = {}, reuse?: { grpcPort: number; apiPort: number }): Promise<AggregatorProcess> {
  const grpcPort = reuse?.grpcPort ?? (await freePort());
  const apiPort = reuse?.apiPort ?? (await freePort());
  const dataDir = join(dir, 'aggregator-data');
  const config = merge({
    node: { id: 'agg-test', data_dir: dataDir },
    grpc: { host: '127.0.0.1', port: grpcPort },
    otlp_http: { host: '127.0.0.1', port: 0 },
    api: { host: '127.0.0.1', port: apiPort },
    log: { level: 'info' },
  }, overrides);
  const configPath = join(dir, 'aggregator.yaml');
  mkdirSync(dir, { recursive: true });
  writeFileSync(configPath, stringify(config));
  const child = spawn(process.execPath, [aggregatorMain, '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  let dead = false;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { dead = true; resolve(code); }));
  const get = async (path: string) => {
    const r = await fetch(`http://127.0.0.1:${apiPort}${path}`);
    const text = await r.text();
    let body: unknown = text;
    try { body = JSON.parse(text); } catch { /* plain text */ }
    return { status: r.status, body };
  };
  await waitFor('aggregator /readyz', async () => {
    if (dead) throw new Error(`aggregator exited during start:\n${out}`);
    return (await get('/readyz').catch(() => null))?.status === 200;
  }, 15_000);
  return {
    child, grpcPort, apiPort, dataDir, get,
    output: () => out,
    stop: async () => { if (!dead) child.kill('SIGTERM'); return exited; },
    kill9: async () => { if (!dead) child.kill('SIGKILL'); await exited; },
  };
}
