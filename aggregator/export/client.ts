import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { Signal } from '../../protocol/otlp/signal.js';
import type { Compression } from '../../protocol/compression.js';

/** How a backend answered one export request. */
export type SendOutcome =
  /**
   * Taken; `refused` points the backend reported it did not keep (OTLP partial success), `unsupported` points the
   * protocol has no form for (never sent), with the message saying which.
   */
  | { kind: 'ok'; refused: number; unsupported?: number; message: string }
  /** Not taken now (backend down, overloaded, misconfigured credentials): kept and sent again later. */
  | { kind: 'retry'; afterMs: number | null; reason: string }
  /** Refused for good (malformed per the backend): sending it again cannot help; dropped and counted. */
  | { kind: 'rejected'; reason: string }
  /** Refused as too large: sent again in smaller requests. */
  | { kind: 'too_large'; reason: string };

export interface ExportClient {
  /** The backend, for logs. */
  readonly target: string;
  /** Whether the backend takes this signal at all (remote write takes metrics only). */
  takes(signal: Signal): boolean;
  /** One request made of `requests` (inflated Export*ServiceRequests of one signal). */
  send(signal: Signal, requests: readonly Uint8Array[], deadlineMs: number): Promise<SendOutcome>;
  /** The compression in which it can send stored requests as they are (see sendStored), if any. */
  readonly passThrough?: Compression;
  /** One request made of stored requests all compressed as `passThrough`, sent without inflating them. */
  sendStored?(signal: Signal, stored: readonly Uint8Array[], deadlineMs: number): Promise<SendOutcome>;
  close(): Promise<void>;
}

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

/** What an operator should check for an HTTP status that is not the data's fault. */
export function explainHttpStatus(status: number): string {
  if (status === 401 || status === 403) return 'the backend refused the credentials: check the exporter headers';
  if (status === 404 || status === 405) return 'the backend has no receiver at this path: check the exporter endpoint';
  if (status >= 500) return 'the backend failed';
  return 'the backend refused the request';
}
