import { gzipSync } from 'node:zlib';
import { Signal, signalName } from '../../protocol/otlp/signal.js';
import { Compression, ZstdCompressor } from '../../protocol/compression.js';
import { decodePartialSuccess, rpcStatusMessage } from '../../protocol/otlp/rpc-status.js';
import { parseRetryAfter } from '../../runtime/retry/retry-after.js';
import { explainHttpStatus, type ExportClient, type SendOutcome } from './client.js';
import { HttpPoster, type ClientTls } from '../../runtime/http/poster.js';

/** Statuses the OTLP/HTTP specification makes retryable. */
const RETRYABLE = new Set([429, 502, 503, 504]);

/**
 * OTLP/HTTP to a backend (an OpenTelemetry Collector, a vendor): `POST <endpoint>/v1/{metrics,logs,traces}`,
 * `application/x-protobuf`, compressed per `compression`. Queued requests of one signal are concatenated into one
 * (protobuf concatenation appends their resource lists). 400 is the data's fault (dropped, counted); 413 makes the
 * exporter send smaller requests; 429/502/503/504 are retried after Retry-After. Any other status (401/403 a wrong
 * token, 404 a wrong URL, 5xx) keeps the data and retries it with backoff: the OTLP specification would drop it, but
 * acknowledged data is not discarded for a configuration mistake an operator can fix.
 */
export class OtlpHttpClient implements ExportClient {
  private readonly poster: HttpPoster;
  private readonly base: string;
  private readonly zstd = new ZstdCompressor(1);

  constructor(
    endpoint: string,
    private readonly headers: Readonly<Record<string, string>>,
    tls: ClientTls,
    private readonly compression: 'gzip' | 'zstd' | 'none',
  ) {
    const url = new URL(endpoint);
    this.poster = new HttpPoster(url, tls);
    this.base = url.pathname.replace(/\/+$/, '');
  }

  get target(): string {
    return this.poster.url.origin + this.base;
  }

  takes(): boolean {
    return true;
  }

  get passThrough(): Compression | undefined {
    return this.compression === 'gzip' ? Compression.GZIP : this.compression === 'zstd' ? Compression.ZSTD : undefined;
  }

  send(signal: Signal, requests: readonly Uint8Array[], deadlineMs: number): Promise<SendOutcome> {
    const raw = requests.length === 1 ? requests[0] : Buffer.concat(requests);
    const body =
      this.compression === 'gzip'
        ? gzipSync(raw, { level: 1 })
        : this.compression === 'zstd'
          ? this.zstd.compress(raw)
          : raw;
    return this.post(signal, body, deadlineMs);
  }

  /** Stored requests compressed as this exporter sends: gzip members or zstd frames, concatenated, are one body. */
  sendStored(signal: Signal, stored: readonly Uint8Array[], deadlineMs: number): Promise<SendOutcome> {
    return this.post(signal, stored.length === 1 ? stored[0] : Buffer.concat(stored), deadlineMs);
  }

  private async post(signal: Signal, body: Uint8Array, deadlineMs: number): Promise<SendOutcome> {
    const path = `${this.base}/v1/${signalName(signal)}`;
    const headers: Record<string, string> = { ...this.headers, 'content-type': 'application/x-protobuf' };
    if (this.compression !== 'none') headers['content-encoding'] = this.compression;
    let a;
    try {
      a = await this.poster.post(path, body, headers, deadlineMs);
    } catch (e) {
      return {
        kind: 'retry',
        afterMs: null,
        reason: `POST ${this.target}${path.slice(this.base.length)} failed: ${(e as Error).message}`,
      };
    }
    if (a.status >= 200 && a.status < 300) {
      const p = decodePartialSuccess(a.body);
      return { kind: 'ok', refused: p.rejected, message: p.message };
    }
    const detail = `HTTP ${a.status} from ${this.target}${path.slice(this.base.length)}: ${(rpcStatusMessage(a.body) || a.body.toString('utf8')).slice(0, 300)}`;
    if (a.status === 400) return { kind: 'rejected', reason: detail };
    if (a.status === 413) return { kind: 'too_large', reason: detail };
    if (RETRYABLE.has(a.status))
      return { kind: 'retry', afterMs: parseRetryAfter(a.headers['retry-after']), reason: detail };
    return { kind: 'retry', afterMs: null, reason: `${explainHttpStatus(a.status)} (${detail}); the data is kept` };
  }

  async close(): Promise<void> {
    this.poster.close();
  }
}
