import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Signal } from '../../protocol/otlp/signal.js';
import { Compression, decompress } from '../../protocol/compression.js';
import { encodePartialSuccess, encodeRpcStatus } from '../../protocol/otlp/rpc-status.js';
import { OtlpRefusal, type OtlpIngest } from './otlp-ingest.js';
import { otlpJsonToProto, responseJson } from './otlp-json.js';
import type { AgentTokens } from './tokens.js';

export interface OtlpHttpOptions {
  host: string;
  port: number;
  /** Largest request body as sent (compressed); larger is answered 413 before it is read. */
  maxBodyBytes: number;
  /** Largest request once inflated; larger is answered 413. */
  maxInflatedBytes: number;
}

const PATHS: Record<string, Signal> = {
  '/v1/metrics': Signal.METRICS,
  '/v1/logs': Signal.LOGS,
  '/v1/traces': Signal.TRACES,
};
/** google.rpc.Code numbers for the Status bodies of error answers. */
const CODE = {
  INVALID_ARGUMENT: 3,
  UNAUTHENTICATED: 16,
  RESOURCE_EXHAUSTED: 8,
  UNAVAILABLE: 14,
  UNIMPLEMENTED: 12,
  NOT_FOUND: 5,
};

class HttpRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
    readonly retryAfterMs = 0,
  ) {
    super(message);
  }
}

/**
 * OTLP/HTTP on `otlp_http` (POST /v1/metrics, /v1/logs, /v1/traces), per the OTLP specification: protobuf or JSON,
 * gzip or zstd (or none), answered in the request's encoding; 400 with a google.rpc.Status for bad data, 401 without
 * a valid bearer token (`auth.agent_tokens_file`; the token's name is the source), 413 past the body limits, 415 for
 * another content type or encoding, 429/503 with Retry-After when overloaded or not ready, and a partial success when
 * part of the data was not kept.
 */
export class OtlpHttpServer {
  private server: http.Server | null = null;

  constructor(
    private readonly opts: OtlpHttpOptions,
    private readonly ingest: OtlpIngest,
    private readonly tokens: () => AgentTokens,
    private readonly log: Logger,
    private readonly onRequest: (signal: string, outcome: string) => void = () => {},
  ) {}

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  async start(): Promise<void> {
    const server = (this.server = http.createServer((req, res) => this.handle(req, res)));
    server.headersTimeout = 30_000;
    server.requestTimeout = 60_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => resolve());
    });
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeIdleConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    const signal = PATHS[path];
    const json = /^application\/json\b/i.test(req.headers['content-type'] ?? '');
    const fail = (r: HttpRefusal) => {
      this.onRequest(signal === undefined ? 'none' : Signal[signal].toLowerCase(), String(r.status));
      const headers: Record<string, string> = { 'content-type': json ? 'application/json' : 'application/x-protobuf' };
      if (r.retryAfterMs > 0) headers['retry-after'] = String(Math.ceil(r.retryAfterMs / 1000));
      if (r.status === 405) headers.allow = 'POST';
      const body = json
        ? JSON.stringify({ code: r.code, message: r.message })
        : Buffer.from(encodeRpcStatus(r.code, r.message, r.retryAfterMs > 0 ? r.retryAfterMs : undefined));
      // A body not read (413, 401) is not drained: the connection closes once the answer is out.
      if (!req.complete) headers.connection = 'close';
      res.writeHead(r.status, headers);
      res.end(body, () => {
        if (!req.complete) req.destroy();
      });
    };
    if (signal === undefined)
      return fail(
        new HttpRefusal(
          404,
          CODE.NOT_FOUND,
          `no OTLP receiver at ${path.slice(0, 100)}: POST to /v1/metrics, /v1/logs or /v1/traces`,
        ),
      );
    if (req.method !== 'POST')
      return fail(new HttpRefusal(405, CODE.UNIMPLEMENTED, `${req.method} is not supported: POST the OTLP request`));
    const who = this.tokens().agentOf(req.headers.authorization);
    if ('refused' in who) {
      this.log.warn({ peer: req.socket.remoteAddress, reason: who.refused, path }, 'OTLP/HTTP request refused');
      return fail(new HttpRefusal(401, CODE.UNAUTHENTICATED, who.refused));
    }
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/x-protobuf' && type !== 'application/json')
      return fail(
        new HttpRefusal(
          415,
          CODE.INVALID_ARGUMENT,
          `Content-Type ${JSON.stringify(type)} is not supported: send application/x-protobuf or application/json`,
        ),
      );
    const enc = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    const compression =
      enc === 'gzip'
        ? Compression.GZIP
        : enc === 'zstd'
          ? Compression.ZSTD
          : enc === 'identity' || enc === ''
            ? Compression.NONE
            : null;
    if (compression === null)
      return fail(
        new HttpRefusal(
          415,
          CODE.INVALID_ARGUMENT,
          `Content-Encoding ${JSON.stringify(enc)} is not supported: send gzip, zstd or none`,
        ),
      );
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > this.opts.maxBodyBytes) return fail(this.tooLarge(declared));
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > this.opts.maxBodyBytes) {
        over = true;
        fail(this.tooLarge(size));
      } else chunks.push(c);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      if (over) return;
      this.take(signal, who.agent, Buffer.concat(chunks, size), compression, json).then(
        ({ rejected, message }) => {
          this.onRequest(Signal[signal].toLowerCase(), '200');
          if (json) {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(responseJson(signal, rejected, message));
          } else {
            res.writeHead(200, { 'content-type': 'application/x-protobuf' });
            res.end(Buffer.from(encodePartialSuccess(rejected, message)));
          }
        },
        (e: Error) => fail(e instanceof HttpRefusal ? e : new HttpRefusal(500, 13, e.message)),
      );
    });
  }

  private tooLarge(bytes: number): HttpRefusal {
    return new HttpRefusal(
      413,
      CODE.RESOURCE_EXHAUSTED,
      `the request body (${bytes} bytes) is larger than otlp_http.max_body_bytes (${this.opts.maxBodyBytes}): send smaller batches`,
    );
  }

  private async take(
    signal: Signal,
    source: string,
    body: Buffer,
    compression: Compression,
    json: boolean,
  ): Promise<{ rejected: number; message: string }> {
    let raw: Uint8Array;
    try {
      raw = decompress(body, compression, this.opts.maxInflatedBytes);
    } catch (e) {
      const msg = (e as Error).message;
      if (/past the limit|larger than|within \d+ bytes: .*(buffer|larger|length)/i.test(msg))
        throw new HttpRefusal(
          413,
          CODE.RESOURCE_EXHAUSTED,
          `the request inflates past otlp_http.max_inflated_bytes (${this.opts.maxInflatedBytes})`,
        );
      throw new HttpRefusal(400, CODE.INVALID_ARGUMENT, `the body could not be decompressed: ${msg}`);
    }
    if (json) {
      try {
        raw = otlpJsonToProto(signal, Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8'));
      } catch (e) {
        throw new HttpRefusal(
          400,
          CODE.INVALID_ARGUMENT,
          `the body is not an OTLP/JSON request: ${(e as Error).message}`,
        );
      }
    }
    try {
      return await this.ingest.accept(source, signal, raw, body.length);
    } catch (e) {
      if (!(e instanceof OtlpRefusal)) throw e;
      if (e.kind === 'bad_data') throw new HttpRefusal(400, CODE.INVALID_ARGUMENT, e.message);
      if (e.kind === 'overloaded') throw new HttpRefusal(429, CODE.RESOURCE_EXHAUSTED, e.message, e.retryAfterMs);
      throw new HttpRefusal(503, CODE.UNAVAILABLE, e.message, e.retryAfterMs);
    }
  }
}
