import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { uplinkServiceDefinition } from '../../protocol/uplink/service.js';
import { AckStatus, type RingInfo, type UplinkAck, type UplinkBatch } from '../../protocol/uplink/messages.js';
import type { StoredBatch } from '../buffer/record.js';
import type { SendResult, UplinkTransport } from './transport.js';

export interface GrpcTransportOptions {
  agentId: string;
  /** Aggregator seed endpoints, host:port. */
  endpoints: readonly string[];
  /** Bearer token sent as `authorization: Bearer …`; '' = none. */
  token: string;
  tls: { enabled: boolean; ca: string; insecureSkipVerify: boolean };
  /** The buffer's low-water mark, sent with every batch (UplinkBatch.acked_below); absent = not sent. */
  lowWater?: () => number;
  /** The buffer's id, sent with every batch (UplinkBatch.buffer_id); absent = not sent. */
  bufferId?: number;
}

const UplinkClient = grpc.makeGenericClientConstructor(
  uplinkServiceDefinition as unknown as grpc.ServiceDefinition,
  'Uplink',
);
type UplinkStub = grpc.Client & {
  Send(
    req: UplinkBatch,
    md: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: UplinkAck) => void,
  ): void;
  GetRing(
    req: object,
    md: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: RingInfo) => void,
  ): void;
};

/** gRPC statuses that say the request itself is wrong (no retry helps); everything else is backed off and retried. */
/**
 * Statuses that prove the batch itself cannot be taken: it is moved aside. Everything else — a refused token, an
 * endpoint that does not serve the uplink (UNIMPLEMENTED), a server not set up for it (FAILED_PRECONDITION) — is a
 * matter of configuration that an operator fixes: the batch stays and is retried with backoff, and the failure is
 * logged and counted (a rotated token must not discard the backlog).
 */
const PERMANENT = new Set([grpc.status.INVALID_ARGUMENT, grpc.status.OUT_OF_RANGE]);

/** A routed address that failed is skipped (its batches go to a seed, which forwards) for this long. */
const ROUTE_PENALTY_MS = 10_000;

/**
 * The uplink gRPC service as a transport. One HTTP/2 channel per endpoint; a failed call moves on to the next seed
 * endpoint, and grpc-js reconnects channels by itself.
 */
export class GrpcUplinkTransport implements UplinkTransport {
  private readonly clients: UplinkStub[];
  private current = 0;
  private readonly metadata = new grpc.Metadata();
  private readonly creds: grpc.ChannelCredentials;
  /** Channels to ring members by address (ring-aware routing), and when each last failed. */
  private readonly routed = new Map<string, { client: UplinkStub; failedAt: number }>();

  constructor(private readonly opts: GrpcTransportOptions) {
    this.creds = opts.tls.enabled
      ? grpc.credentials.createSsl(
          opts.tls.ca ? readFileSync(opts.tls.ca) : null,
          null,
          null,
          opts.tls.insecureSkipVerify ? { checkServerIdentity: () => undefined } : undefined,
        )
      : grpc.credentials.createInsecure();
    this.clients = opts.endpoints.map((e) => this.channel(e));
    if (opts.token) this.metadata.set('authorization', `Bearer ${opts.token}`);
  }

  private channel(address: string): UplinkStub {
    return new UplinkClient(address, this.creds, {
      'grpc.keepalive_time_ms': 30_000,
      // The sender has its own backoff with jitter; gRPC's (up to 2 minutes) on top would leave a restarted
      // aggregator unused long after it is back.
      'grpc.initial_reconnect_backoff_ms': 500,
      'grpc.max_reconnect_backoff_ms': 5000,
      'grpc.max_receive_message_length': 64 << 20,
      'grpc.max_send_message_length': 64 << 20,
    }) as unknown as UplinkStub;
  }

  /** The ring from the current seed endpoint, or null when it cannot be had. */
  getRing(): Promise<RingInfo | null> {
    const client = this.clients[this.current];
    return new Promise((resolve) =>
      client.GetRing({}, this.metadata, { deadline: Date.now() + 5000 }, (err, info) =>
        resolve(err ? null : (info ?? null)),
      ),
    );
  }

  /** The channel for a batch: its route's, unless that failed recently, else the current seed. */
  private pick(route: string): { client: UplinkStub; routed: string | null } {
    if (route !== '') {
      let r = this.routed.get(route);
      if (r === undefined) this.routed.set(route, (r = { client: this.channel(route), failedAt: 0 }));
      if (Date.now() - r.failedAt >= ROUTE_PENALTY_MS) return { client: r.client, routed: route };
    }
    return { client: this.clients[this.current], routed: null };
  }

  get target(): string {
    return this.opts.endpoints[this.current] ?? '(none)';
  }

  send(batch: StoredBatch, deadlineMs: number): Promise<SendResult> {
    const req: UplinkBatch = {
      agentId: this.opts.agentId,
      seq: batch.seq,
      signal: batch.signal,
      compression: batch.compression,
      payload: batch.payload,
      points: batch.points,
      ringVersion: 0,
      ackedBelow: this.opts.lowWater?.() ?? 0,
      bufferId: this.opts.bufferId ?? 0,
    };
    const { client, routed } = this.pick(batch.route);
    return new Promise((resolve) => {
      client.Send(req, this.metadata, { deadline: Date.now() + deadlineMs }, (err, ack) => {
        if (err) {
          if (routed !== null) this.routed.get(routed)!.failedAt = Date.now();
          else if (this.clients.length > 1) this.current = (this.current + 1) % this.clients.length;
          const code = grpc.status[err.code] ?? String(err.code);
          if (PERMANENT.has(err.code)) return resolve({ kind: 'rejected', reason: `${code}: ${err.details}` });
          return resolve({ kind: 'failed', code, reason: explain(err) });
        }
        resolve(fromAck(ack!));
      });
    });
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.close();
    for (const r of this.routed.values()) r.client.close();
  }
}

function fromAck(ack: UplinkAck): SendResult {
  switch (ack.status) {
    case AckStatus.OK:
      return { kind: 'ok', ringVersion: ack.ringVersion };
    case AckStatus.RETRY:
      return { kind: 'retry', afterMs: ack.retryAfterMs, reason: ack.reason || 'aggregator asked to retry' };
    case AckStatus.REJECTED:
      return { kind: 'rejected', reason: ack.reason || 'rejected without a reason' };
    default:
      return { kind: 'failed', code: 'BAD_ACK', reason: `aggregator answered with ack status ${ack.status}` };
  }
}

/** A sentence an operator can act on for the failures they will meet. */
function explain(err: grpc.ServiceError): string {
  switch (err.code) {
    case grpc.status.UNAUTHENTICATED:
      return `the aggregator refused the agent's token (${err.details}); check uplink.token and the aggregator's auth.agent_tokens_file`;
    case grpc.status.PERMISSION_DENIED:
      return `the aggregator denied this agent (${err.details})`;
    case grpc.status.UNAVAILABLE:
      return `aggregator unavailable (${err.details}); is it running, and do uplink.tls settings match its TLS?`;
    case grpc.status.DEADLINE_EXCEEDED:
      return 'the aggregator did not answer in time';
    case grpc.status.UNIMPLEMENTED:
      return `the endpoint does not serve the otlp-edge uplink (${err.details}); check uplink.endpoints (an aggregator's gRPC port) and uplink.protocol`;
    case grpc.status.FAILED_PRECONDITION:
      return `the aggregator cannot take batches yet (${err.details}); the batch is kept and retried`;
    default:
      return `${grpc.status[err.code] ?? err.code}: ${err.details}`;
  }
}
