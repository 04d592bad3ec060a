import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { answerMetrics, answerProbe } from './endpoints.js';

export interface OpsServerOptions {
  host: string;
  /** 0 = off. */
  port: number;
  registry: Registry;
  /** Readiness: null when ready, else the reason (shown by /readyz with 503). */
  notReady: () => string | null;
}

/** A local operations port with `/metrics`, `/healthz` and `/readyz` only (the agent's `http` keys). */
export class OpsServer {
  private server: Server | null = null;
  port = 0;

  constructor(private readonly opts: OpsServerOptions) {}

  async start(): Promise<void> {
    if (this.opts.port === 0) return;
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (answerProbe(path, res, this.opts.notReady)) return;
      if (path === '/metrics') void answerMetrics(res, this.opts.registry);
      else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /healthz or /readyz\n');
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) {
      s.closeAllConnections();
      await new Promise((resolve) => s.close(resolve));
    }
  }
}
