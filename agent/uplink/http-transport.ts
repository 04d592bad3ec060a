import { Signal } from '../../protocol/otlp/signal.js';
import { decompress, gzip, Compression, ZstdCompressor } from '../../protocol/compression.js';
import type { StoredBatch } from '../buffer/record.js';
import { segmentsOf } from '../buffer/pack.js';
import { REQUEST_LIMITS } from './next-request.js';
import type { SendOptions, SendResult, UplinkTransport } from './transport.js';
import { parseRetryAfter } from '../../runtime/retry/retry-after.js';

export interface OtlpHttpTransportOptions {
  /** Base URL, e.g. http://collector:4318; requests go to /v1/metrics and /v1/logs. */
  endpoint: string;
  /** Sent as `authorization: Bearer …` when set. */
  token: string;
}

/** Statuses the OTLP/HTTP specification makes retryable: retried after the server's Retry-After. */
const RETRYABLE = new Set([429, 502, 503, 504]);
/**
 * Statuses that prove the request itself is malformed: the batch is moved aside. Any other failure (401/403 a
 * refused or rotated token, 404/405 a wrong URL, 413 a proxy's size limit, 5xx) is a matter of configuration or of
 * the server: the batch stays and is retried with backoff, logged and counted, so no backlog is discarded for it.
 */
const MALFORMED = new Set([400, 422]);
/** When the server gives no Retry-After for a retryable status. */
const DEFAULT_RETRY_MS = 1000;

/**
 * Stored batches to any OTLP/HTTP endpoint (an OpenTelemetry Collector, a vendor), as standard OTLP:
 * `application/x-protobuf` with `Content-Encoding: zstd`. A group of batches becomes one request per signal: their
 * Export*ServiceRequests inflated and concatenated (protobuf concatenation appends the repeated resource lists, so
 * the result is the request holding all of them) and compressed once; a lone batch goes as stored. An endpoint that
 * refuses zstd (415, or 400 naming the encoding) is switched to gzip for the rest of the process. A combined request
 * refused as malformed is split, so only the batch at fault is moved aside.
 */
export class OtlpHttpTransport implements UplinkTransport {
  private zstdRefused = false;
  private readonly base: string;
  private readonly zstd = new ZstdCompressor(3);

  constructor(private readonly opts: OtlpHttpTransportOptions) {
    this.base = opts.endpoint.replace(/\/+$/, '');
  }

  get target(): string {
    return this.base;
  }

  async send(batches: readonly StoredBatch[], opts: SendOptions): Promise<SendResult & { wireBytes: number }> {
    const results: (SendResult & { wireBytes: number })[] = [];
    for (const signal of [Signal.METRICS, Signal.LOGS]) {
      const group = batches.filter((b) => b.signal === signal);
      if (group.length > 0) results.push(await this.post(group, opts.deadlineMs));
    }
    const wireBytes = results.reduce((n, r) => n + r.wireBytes, 0);
    const worst =
      results.find((r) => r.kind === 'failed') ??
      results.find((r) => r.kind === 'split') ??
      results.find((r) => r.kind === 'retry') ??
      results.find((r) => r.kind === 'rejected');
    return worst ? { ...worst, wireBytes } : { kind: 'ok', ringVersion: 0, wireBytes };
  }

  /** One request for batches of one signal. */
  private async post(batches: readonly StoredBatch[], deadlineMs: number): Promise<SendResult & { wireBytes: number }> {
    const batch = batches[0];
    const url = `${this.base}${batch.signal === Signal.LOGS ? '/v1/logs' : '/v1/metrics'}`;
    const useGzip = this.zstdRefused || (batches.length === 1 && batch.compression === Compression.GZIP);
    let body: Uint8Array;
    let encoding: string | null;
    try {
      if (batches.length > 1 || batch.segments !== undefined) {
        // A packed record can hold far more than an endpoint takes in one request: requests of at most the
        // sender's request points each, sent in turn (a failure part way resends the whole group: at least once).
        const parts: Uint8Array[][] = [[]];
        let points = 0;
        for (const s of batches.flatMap((b) => segmentsOf(b))) {
          if (points > 0 && points + s.points > REQUEST_LIMITS.maxRequestPoints) {
            parts.push([]);
            points = 0;
          }
          parts[parts.length - 1].push(s.otlp);
          points += s.points;
        }
        encoding = useGzip ? 'gzip' : 'zstd';
        let wireBytes = 0;
        for (const part of parts) {
          const raw = Buffer.concat(part);
          const compressed = useGzip ? gzip(raw) : this.zstd.compress(raw);
          wireBytes += compressed.length;
          const r = await this.request(url, compressed, encoding, batches.length, deadlineMs);
          if (r.kind !== 'ok') return { ...r, wireBytes };
        }
        return { kind: 'ok', ringVersion: 0, wireBytes };
      }
      if (batch.compression === Compression.ZSTD && useGzip) body = gzip(decompress(batch.payload, Compression.ZSTD));
      else body = batch.payload;
      encoding = batch.compression === Compression.NONE ? null : useGzip ? 'gzip' : 'zstd';
    } catch (e) {
      if (batches.length > 1)
        return { kind: 'split', reason: `a stored batch is unreadable: ${(e as Error).message}`, wireBytes: 0 };
      return {
        kind: 'rejected',
        reason: `stored batch ${batch.seq} is unreadable: ${(e as Error).message}`,
        wireBytes: 0,
      };
    }
    return { ...(await this.request(url, body, encoding, batches.length, deadlineMs)), wireBytes: body.length };
  }

  private async request(
    url: string,
    body: Uint8Array,
    encoding: string | null,
    batchCount: number,
    deadlineMs: number,
  ): Promise<SendResult> {
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        body,
        headers: {
          'content-type': 'application/x-protobuf',
          ...(encoding ? { 'content-encoding': encoding } : {}),
          ...(this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {}),
        },
        signal: AbortSignal.timeout(deadlineMs),
      });
    } catch (e) {
      const err = e as Error & { cause?: Error };
      return {
        kind: 'failed',
        code: 'UNREACHABLE',
        reason: `POST ${url} failed: ${err.cause?.message ?? err.message}`,
      };
    }
    const text = res.ok ? '' : await res.text().catch(() => '');
    if (res.ok) {
      await res.arrayBuffer().catch(() => undefined);
      return { kind: 'ok', ringVersion: 0 };
    }
    if (encoding === 'zstd' && (res.status === 415 || (res.status === 400 && /zstd|encoding/i.test(text)))) {
      this.zstdRefused = true;
      return { kind: 'retry', afterMs: 0, reason: `${url} refused zstd (${res.status}); switching to gzip` };
    }
    if (RETRYABLE.has(res.status))
      return {
        kind: 'retry',
        afterMs: retryAfter(res.headers.get('retry-after')),
        reason: `HTTP ${res.status} from ${url}`,
      };
    if (MALFORMED.has(res.status)) {
      const reason = `HTTP ${res.status} from ${url}: ${text.slice(0, 300)}`;
      return batchCount > 1 ? { kind: 'split', reason } : { kind: 'rejected', reason };
    }
    return {
      kind: 'failed',
      code: `HTTP_${res.status}`,
      reason: `${explainStatus(res.status)} (HTTP ${res.status} from ${url}: ${text.slice(0, 200)}); the batch is kept and retried`,
    };
  }

  async close(): Promise<void> {}
}

/** What an operator should check for a status that is not the batch's fault. */
function explainStatus(status: number): string {
  if (status === 401 || status === 403) return 'the endpoint refused the credentials: check uplink.token';
  if (status === 404 || status === 405)
    return 'the endpoint has no OTLP/HTTP receiver at this path: check uplink.endpoints (a base URL such as http://collector:4318)';
  if (status === 413) return 'the endpoint (or a proxy before it) refuses requests this large';
  if (status >= 500) return 'the endpoint failed';
  return 'the endpoint refused the request';
}

/** Retry-After as seconds or an HTTP date → ms; DEFAULT_RETRY_MS when absent or unreadable. */
export function retryAfter(v: string | null): number {
  return parseRetryAfter(v) ?? DEFAULT_RETRY_MS;
}
