import { join } from 'node:path';
import { repoRoot } from './agent-process.js';
import { freePort } from './ports.js';
import { merge, startService, type ServiceProcess } from './process.js';

export const aggregatorMain = join(repoRoot, 'dist', 'aggregator', 'main.js');

export interface AggregatorProcess extends ServiceProcess {
  grpcPort: number;
  apiPort: number;
  /** OTLP/HTTP port (127.0.0.1). */
  otlpHttpPort: number;
  dataDir: string;
  /** GET on the API; resolves with status and parsed JSON (or text). */
  get(path: string): Promise<{ status: number; body: any }>;
}

/** Starts `otlp-edge-aggregator` on free loopback ports (or the given ones) and waits for /readyz. */
export async function startAggregator(
  dir: string,
  overrides: Record<string, unknown> = {},
  reuse?: { grpcPort: number; apiPort: number; otlpHttpPort?: number },
): Promise<AggregatorProcess> {
  const grpcPort = reuse?.grpcPort ?? (await freePort());
  const apiPort = reuse?.apiPort ?? (await freePort());
  const otlpHttpPort = reuse?.otlpHttpPort ?? (await freePort());
  const dataDir = join(dir, 'aggregator-data');
  const config = merge(
    {
      node: { id: 'agg-test', data_dir: dataDir },
      grpc: { host: '127.0.0.1', port: grpcPort },
      api: { host: '127.0.0.1', port: apiPort },
      otlp_http: { host: '127.0.0.1', port: otlpHttpPort },
      log: { level: 'info' },
    },
    overrides,
  );
  const get = async (path: string) => {
    const r = await fetch(`http://127.0.0.1:${apiPort}${path}`);
    const text = await r.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* plain text */
    }
    return { status: r.status, body };
  };
  const service = await startService(dir, 'aggregator', aggregatorMain, config, `http://127.0.0.1:${apiPort}/readyz`);
  return { ...service, grpcPort, apiPort, otlpHttpPort, dataDir, get };
}
