import snappy from 'snappy';
import { Signal } from '../../protocol/otlp/signal.js';
import { decodeMetricsRequest } from '../../protocol/otlp/decode.js';
import { WriteRequestBuilder, type RemoteWriteOptions } from '../../protocol/prometheus/remote-write.js';
import { parseRetryAfter } from '../../runtime/retry/retry-after.js';
import { explainHttpStatus, type ExportClient, type SendOutcome } from './client.js';
import { HttpPoster, type ClientTls } from '../../runtime/http/poster.js';

/**
 * Prometheus remote write 1.0 (snappy-compressed prompb.WriteRequest) to a Prometheus with its remote-write receiver,
 * Mimir, Cortex, Thanos or VictoriaMetrics. Metrics only. 5xx and 429 are retried (after Retry-After); other 4xx
 * are the samples' fault per the remote-write specification (out of order, too old) and dropped, counted. Points
 * with no remote-write 1.0 form (delta sums, exponential histograms) are counted as unsupported.
 */
export class RemoteWriteClient implements ExportClient {
  private readonly poster: HttpPoster;

  constructor(
    endpoint: string,
    private readonly headers: Readonly<Record<string, string>>,
    tls: ClientTls,
    private readonly opts: RemoteWriteOptions,
  ) {
    this.poster = new HttpPoster(new URL(endpoint), tls);
  }

  get target(): string {
    return this.poster.url.href;
  }

  takes(signal: Signal): boolean {
    return signal === Signal.METRICS;
  }

  async send(_signal: Signal, requests: readonly Uint8Array[], deadlineMs: number): Promise<SendOutcome> {
    const b = new WriteRequestBuilder(this.opts);
    for (const r of requests) b.addMetrics(decodeMetricsRequest(r));
    let unsupported = 0;
    const why: string[] = [];
    for (const [reason, n] of b.skipped) {
      unsupported += n;
      why.push(`${n} ${reason.replace(/_/g, ' ')} points`);
    }
    const message = why.length > 0 ? `no remote-write form: ${why.join(', ')}` : '';
    if (b.samples === 0) return { kind: 'ok', refused: 0, unsupported, message };
    const body = snappy.compressSync(Buffer.from(b.encode()));
    let a;
    try {
      a = await this.poster.post(
        this.poster.url.pathname + this.poster.url.search,
        body,
        {
          ...this.headers,
          'content-type': 'application/x-protobuf',
          'content-encoding': 'snappy',
          'x-prometheus-remote-write-version': '0.1.0',
          'user-agent': 'otlp-edge-aggregator',
        },
        deadlineMs,
      );
    } catch (e) {
      return { kind: 'retry', afterMs: null, reason: `POST ${this.target} failed: ${(e as Error).message}` };
    }
    if (a.status >= 200 && a.status < 300) return { kind: 'ok', refused: 0, unsupported, message };
    const detail = `HTTP ${a.status} from ${this.target}: ${a.body.toString('utf8').slice(0, 300)}`;
    if (a.status === 413) return { kind: 'too_large', reason: detail };
    if (a.status >= 500 || a.status === 429)
      return { kind: 'retry', afterMs: parseRetryAfter(a.headers['retry-after']), reason: detail };
    if (a.status === 401 || a.status === 403 || a.status === 404 || a.status === 405)
      return { kind: 'retry', afterMs: null, reason: `${explainHttpStatus(a.status)} (${detail}); the data is kept` };
    return { kind: 'rejected', reason: detail };
  }

  async close(): Promise<void> {
    this.poster.close();
  }
}
