import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, waitFor } from './ports.js';

/** A real Prometheus (Debian's package) on loopback with its remote-write receiver, scraping `targets`. */
export class Prometheus {
  private proc: ChildProcess | null = null;
  port = 0;
  output = '';

  constructor(
    private readonly dir: string,
    private readonly targets: string[] = [],
  ) {}

  async start(): Promise<void> {
    this.port = await freePort();
    const config = join(this.dir, 'prometheus.yml');
    writeFileSync(
      config,
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        'scrape_configs:',
        '  - job_name: otlp-edge',
        `    static_configs: [ { targets: [ ${this.targets.map((t) => JSON.stringify(t)).join(', ')} ] } ]`,
        '',
      ].join('\n'),
    );
    this.proc = spawn(
      'prometheus',
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(this.dir, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${this.port}`,
        '--web.enable-remote-write-receiver',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.proc.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    this.proc.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    await waitFor('prometheus ready', async () => (await fetch(`${this.url}/-/ready`)).ok, 20_000);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** An instant query's result vector: labels and value of each series. */
  async query(q: string): Promise<{ metric: Record<string, string>; value: number }[]> {
    const r = (await (await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as any;
    if (r.status !== 'success') throw new Error(`query ${q} failed: ${JSON.stringify(r)}`);
    return r.data.result.map((x: any) => ({ metric: x.metric, value: Number(x.value[1]) }));
  }

  /** A range query's samples of one series (timestamps in ms). */
  async samples(selector: string, fromMs: number, toMs: number): Promise<{ t: number; v: number }[]> {
    const q = `${selector}[${Math.ceil((toMs - fromMs) / 1000) + 1}s]`;
    const r = (await (
      await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(q)}&time=${toMs / 1000}`)
    ).json()) as any;
    if (r.status !== 'success') throw new Error(`query ${q} failed: ${JSON.stringify(r)}`);
    return (r.data.result[0]?.values ?? []).map((x: [number, string]) => ({
      t: Math.round(x[0] * 1000),
      v: Number(x[1]),
    }));
  }

  stop(): void {
    this.proc?.kill('SIGKILL');
  }
}

/** `promtool check metrics` over an exposition: its findings ('' when it has none). */
export function promtoolCheck(text: string): { status: number; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}
