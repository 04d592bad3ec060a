import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface OpsServerOptions {
  host: string;
  /** 0 = off. */
  port: number;
  registry: Registry;
  /** Readiness: null when ready, else the reason (shown by /readyz with 503). */
  notReady: () => string | null;
}

/**
 * The agent's local operations endpoint: `/metrics` (Prometheus text), `/healthz` (the process answers),
 * `/readyz` (storage open and intake listening; 503 with the reason otherwise).
 */
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
      if (path === '/metrics') {
        this.opts.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': this.opts.registry.contentType }).end(text),
          (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`),
        );
      } else if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else if (path === '/readyz') {
        const reason = this.opts.notReady();
        res.writeHead(reason === null ? 200 : 503, { 'content-type': 'text/plain' }).end(reason === null ? 'ready\n' : `not ready: ${reason}\n`);
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /healthz or /readyz\n');
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) {
      s.closeAllConnections();
      await new Promise((resolve) => s.close(resolve));
    }
  }
}
