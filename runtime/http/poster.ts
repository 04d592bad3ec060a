import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';

/**
 * JSON or protobuf POSTs to one HTTP(S) backend over keep-alive connections: the exporters' backends and the
 * alert receivers (Alertmanager, webhooks).
 */

export interface ClientTls {
  /** PEM CA bundle file the backend's certificate is checked against ('' = the system's). */
  ca: string;
  insecure_skip_verify: boolean;
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** Most of a backend's answer body kept (error text, partial success). */
const MAX_ANSWER_BYTES = 1 << 20;

/**
 * POSTs over keep-alive connections to one backend (http or https with the configured CA), answering its status,
 * headers and (bounded) body; throws on a connection failure or the deadline.
 */
export class HttpPoster {
  private readonly agent: http.Agent;
  private readonly https: boolean;

  constructor(
    readonly url: URL,
    tls: ClientTls,
  ) {
    this.https = url.protocol === 'https:';
    this.agent = this.https
      ? new https.Agent({
          keepAlive: true,
          maxSockets: 4,
          ca: tls.ca ? readFileSync(tls.ca) : undefined,
          rejectUnauthorized: !tls.insecure_skip_verify,
        })
      : new http.Agent({ keepAlive: true, maxSockets: 4 });
  }

  post(path: string, body: Uint8Array, headers: Record<string, string>, deadlineMs: number): Promise<HttpAnswer> {
    const mod = this.https ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(
        {
          protocol: this.url.protocol,
          hostname: this.url.hostname,
          port: this.url.port,
          path,
          method: 'POST',
          agent: this.agent,
          headers: { ...headers, 'content-length': String(body.length) },
          timeout: deadlineMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size <= MAX_ANSWER_BYTES) chunks.push(c);
          });
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${deadlineMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
