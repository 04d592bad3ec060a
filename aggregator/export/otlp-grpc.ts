import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { otlpGrpcPath, type Signal } from '../../protocol/otlp/signal.js';
import { decodePartialSuccess, retryDelayOf } from '../../protocol/otlp/rpc-status.js';
import type { ExportClient, SendOutcome } from './client.js';
import type { ClientTls } from '../../runtime/http/poster.js';

/** Codes the OTLP specification makes retryable (RESOURCE_EXHAUSTED too: the data is kept either way). */
const RETRYABLE = new Set([
  grpc.status.CANCELLED,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.ABORTED,
  grpc.status.OUT_OF_RANGE,
  grpc.status.UNAVAILABLE,
  grpc.status.DATA_LOSS,
]);

const pass = (b: Buffer) => b;

/**
 * OTLP/gRPC to a backend (`host:port`, or `https://host:port` for TLS). Messages go as the bytes queued (no decode
 * and re-encode). INVALID_ARGUMENT is the data's fault (dropped, counted); the retryable codes are retried after the
 * backend's RetryInfo; any other code (UNAUTHENTICATED, UNIMPLEMENTED, …) keeps the data and retries with backoff,
 * as OTLP/HTTP does for the like statuses.
 */
export class OtlpGrpcClient implements ExportClient {
  private readonly client: grpc.Client;
  readonly target: string;

  constructor(
    endpoint: string,
    private readonly headers: Readonly<Record<string, string>>,
    tls: ClientTls,
    compression: 'gzip' | 'none',
  ) {
    const secure = endpoint.startsWith('https://');
    this.target = endpoint.replace(/^[a-z]+:\/\//, '').replace(/\/+$/, '');
    const creds = secure
      ? grpc.credentials.createSsl(
          tls.ca ? readFileSync(tls.ca) : null,
          null,
          null,
          tls.insecure_skip_verify ? { checkServerIdentity: () => undefined, rejectUnauthorized: false } : undefined,
        )
      : grpc.credentials.createInsecure();
    this.client = new grpc.Client(this.target, creds, {
      'grpc.max_send_message_length': 64 << 20,
      ...(compression === 'gzip' ? { 'grpc.default_compression_algorithm': 2 } : {}),
    });
  }

  takes(): boolean {
    return true;
  }

  send(signal: Signal, requests: readonly Uint8Array[], deadlineMs: number): Promise<SendOutcome> {
    const body = Buffer.concat(requests);
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(this.headers)) md.set(k.toLowerCase(), v);
    const path = otlpGrpcPath(signal);
    return new Promise((resolve) => {
      this.client.makeUnaryRequest(
        path,
        pass,
        pass,
        body,
        md,
        { deadline: Date.now() + deadlineMs },
        (err: grpc.ServiceError | null, res?: Buffer) => {
          if (!err) {
            const p = decodePartialSuccess(res ?? Buffer.alloc(0));
            return resolve({ kind: 'ok', refused: p.rejected, message: p.message });
          }
          const detail = `${grpc.status[err.code] ?? err.code} from ${this.target}: ${err.details}`;
          if (err.code === grpc.status.INVALID_ARGUMENT) return resolve({ kind: 'rejected', reason: detail });
          if (RETRYABLE.has(err.code)) {
            const details = err.metadata?.get('grpc-status-details-bin')[0];
            const after = details instanceof Buffer ? retryDelayOf(details) : null;
            if (err.code === grpc.status.RESOURCE_EXHAUSTED && /larger than max|message too large/i.test(err.details))
              return resolve({ kind: 'too_large', reason: detail });
            return resolve({ kind: 'retry', afterMs: after, reason: detail });
          }
          resolve({ kind: 'retry', afterMs: null, reason: `${detail}; the data is kept` });
        },
      );
    });
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
