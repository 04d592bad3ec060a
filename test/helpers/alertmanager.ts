import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { freePort, waitFor } from './ports.js';

/** A real Prometheus Alertmanager (Debian's prometheus-alertmanager) on loopback, routing to nowhere. */
export class Alertmanager {
  private proc: ChildProcess | null = null;
  port = 0;
  output = '';

  constructor(private readonly dir: string) {}

  async start(): Promise<void> {
    this.port = await freePort();
    const config = join(this.dir, 'alertmanager.yml');
    writeFileSync(config, 'route: { receiver: nowhere, group_wait: 1s }\nreceivers: [ { name: nowhere } ]\n');
    this.proc = spawn(
      'prometheus-alertmanager',
      [
        `--config.file=${config}`,
        `--storage.path=${join(this.dir, 'am-data')}`,
        `--web.listen-address=127.0.0.1:${this.port}`,
        '--cluster.listen-address=',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.proc.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    this.proc.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    await waitFor('alertmanager ready', async () => (await fetch(`${this.url}/-/ready`).catch(() => null))?.ok, 20_000);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** GET /api/v2/alerts: the alerts Alertmanager holds (active: not resolved; set active=false for all). */
  async alerts(query = ''): Promise<any[]> {
    return (await (await fetch(`${this.url}/api/v2/alerts${query}`)).json()) as any[];
  }

  stop(): void {
    this.proc?.kill('SIGKILL');
  }
}

/** A webhook receiver that keeps each request's body and headers; `failFirst` requests are answered 503. */
export async function startWebhook(failFirst = 0): Promise<{
  url: string;
  requests: { body: string; headers: Record<string, string | string[] | undefined> }[];
  attempts: () => number;
  close(): Promise<void>;
}> {
  const requests: { body: string; headers: Record<string, string | string[] | undefined> }[] = [];
  let attempts = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      attempts++;
      if (attempts <= failFirst) return res.writeHead(503).end('not now');
      requests.push({ body, headers: req.headers });
      res.writeHead(204).end();
    });
  });
  const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as any).port)));
  return {
    url: `http://127.0.0.1:${port}/hooks/otlp-edge`,
    requests,
    attempts: () => attempts,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
