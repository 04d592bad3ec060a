import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { merge, repoRoot, startService, type ServiceProcess } from './process.js';

export { repoRoot };
export const agentMain = join(repoRoot, 'dist', 'agent', 'main.js');

export interface AgentProcess extends ServiceProcess {
  mqttPort: number;
  httpPort: number;
  dataDir: string;
  metrics(): Promise<string>;
}

/**
 * Starts `otlp-edge-agent` as a child process on free loopback ports with a config written to `dir`, and waits
 * until /readyz answers 200. `overrides` are merged into the config (YAML keys as deploy/agent.yaml lists them).
 */
export async function startAgent(
  dir: string,
  overrides: Record<string, unknown> = {},
  reuse?: { mqttPort: number; httpPort: number },
): Promise<AgentProcess> {
  const mqttPort = reuse?.mqttPort ?? (await freePort());
  const httpPort = reuse?.httpPort ?? (await freePort());
  const dataDir = join(dir, 'data');
  const config = merge(
    {
      agent: { id: 'gw-test', data_dir: dataDir },
      mqtt: { broker: { tcp: { host: '127.0.0.1', port: mqttPort }, allow_anonymous: true } },
      http: { host: '127.0.0.1', port: httpPort },
      uplink: { endpoints: [] },
      log: { level: 'info' },
    },
    overrides,
  );
  const service = await startService(dir, 'agent', agentMain, config, `http://127.0.0.1:${httpPort}/readyz`);
  return {
    ...service,
    mqttPort,
    httpPort,
    dataDir,
    metrics: async () => (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text(),
  };
}

/** Runs `otlp-edge-agent buffer dump --config …` and returns the parsed OTLP/JSON lines. */
export function bufferDump(configPath: string): unknown[] {
  const r = spawnSync(process.execPath, [agentMain, 'buffer', 'dump', '--config', configPath], {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
  });
  if (r.status !== 0) throw new Error(`buffer dump failed (${r.status}): ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** Value of one Prometheus sample (`name{labels}`) in /metrics text, 0 when absent. */
export function metricValue(text: string, sample: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(sample + ' ')) return Number(line.slice(sample.length + 1));
  }
  return 0;
}
