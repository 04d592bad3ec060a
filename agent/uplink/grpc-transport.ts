import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { uplinkServiceDefinition } from '../../protocol/uplink/service.js';
import { AckStatus, type RingInfo, type UplinkAck, type UplinkBatch } from '../../protocol/uplink/messages.js';
import type { StoredBatch } from '../buffer/record.js';
import { segmentsOf } from '../buffer/pack.js';
import { Compression, ZstdCompressor } from '../../protocol/compression.js';
import type { SendOptions, SendResult, UplinkTransport } from './transport.js';
import { FrameStream, type StreamStub } from './frame-stream.js';
import { explain } from './grpc-status.js';

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
  /** zstd level of the uplink streams' coding; default 3. */
  zstdLevel?: number;
  /** Send one stored batch per call (Send) instead of frames on a stream; default false (tests, old receivers). */
  batchesOnly?: boolean;
  /** How long a stream lives before it is renewed (when no frame is in flight); default 10 minutes. */
  streamLifetimeMs?: number;
  /** How long a stream with nothing to send stays open; default 2 minutes. */
  streamIdleMs?: number;
  /** A stream could not be used with an aggregator (it does not serve Stream, or not this frame format). */
  onStreamRefused?(address: string, reason: string): void;
}

const UplinkClient = grpc.makeGenericClientConstructor(
  uplinkServiceDefinition as unknown as grpc.ServiceDefinition,
  'Uplink',
);
type UplinkStub = grpc.Client &
  StreamStub & {
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
/** Unary Sends in flight at once when a group goes out batch by batch. */
const UNARY_CONCURRENCY = 8;

/**
 * The uplink gRPC service as a transport. One HTTP/2 channel per endpoint and one frame stream on each
 * (frame-stream.ts): a group of stored batches is one frame. An aggregator that does not serve Stream (an older
 * one) or not this frame format gets the batches one per Send call, as stored. A failed call moves on to the next
 * seed endpoint, and grpc-js reconnects channels by itself.
 */
export class GrpcUplinkTransport implements UplinkTransport {
  private readonly clients: UplinkStub[];
  private current = 0;
  private readonly metadata = new grpc.Metadata();
  private readonly creds: grpc.ChannelCredentials;
  /** Channels to ring members by address (ring-aware routing), and when each last failed. */
  private readonly routed = new Map<string, { client: UplinkStub; failedAt: number }>();
  private readonly zstd = new ZstdCompressor(3);
  /** The frame stream of each channel (seed or routed), by address. */
  private readonly streams = new Map<UplinkStub, FrameStream>();

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

  async send(batches: readonly StoredBatch[], opts: SendOptions): Promise<SendResult & { wireBytes?: number }> {
    const route = batches[0].route;
    const { client, routed } = this.pick(route);
    const address = routed ?? this.target;
    const stream = this.opts.batchesOnly || opts.alone ? null : this.streamOf(client, address);
    let result: SendResult & { wireBytes?: number };
    if (stream !== null && stream.usable) {
      result = await stream.send(batches, opts.deadlineMs, this.opts.lowWater?.() ?? 0);
      // Refused (an aggregator without streams): the same batches go by Send at once.
      if (!stream.usable && result.kind === 'retry') result = await this.sendEach(client, batches, opts.deadlineMs);
    } else result = await this.sendEach(client, batches, opts.deadlineMs);
    if (result.kind === 'failed') {
      if (routed !== null) this.routed.get(routed)!.failedAt = Date.now();
      else if (this.clients.length > 1) this.current = (this.current + 1) % this.clients.length;
    }
    return result;
  }

  private streamOf(client: UplinkStub, address: string): FrameStream {
    let s = this.streams.get(client);
    if (s === undefined) {
      s = new FrameStream(client, address, {
        agentId: this.opts.agentId,
        bufferId: this.opts.bufferId ?? 0,
        metadata: this.metadata,
        zstdLevel: this.opts.zstdLevel ?? 3,
        maxLifetimeMs: this.opts.streamLifetimeMs,
        idleCloseMs: this.opts.streamIdleMs,
        onRefused: (reason) => this.opts.onStreamRefused?.(address, reason),
      });
      this.streams.set(client, s);
    }
    return s;
  }

  /**
   * The batches one Send call each (a few at a time), their outcomes combined into one. A packed record goes as
   * the batches it holds, each under its own seq, recompressed alone.
   */
  private async sendEach(
    client: UplinkStub,
    stored: readonly StoredBatch[],
    deadlineMs: number,
  ): Promise<SendResult & { wireBytes: number }> {
    let batches: StoredBatch[];
    try {
      batches = stored.flatMap((b) => (b.segments === undefined ? [b] : unpacked(b, this.zstd)));
    } catch (e) {
      return { kind: 'rejected', reason: `a packed record could not be read: ${(e as Error).message}`, wireBytes: 0 };
    }
    const results: SendResult[] = new Array(batches.length);
    let next = 0;
    const worker = async () => {
      while (next < batches.length) {
        const i = next++;
        results[i] = await this.sendOne(client, batches[i], deadlineMs);
      }
    };
    await Promise.all(Array.from({ length: Math.min(UNARY_CONCURRENCY, batches.length) }, worker));
    const wireBytes = batches.reduce((n, b) => n + b.payload.length, 0);
    const failed = results.find((r) => r.kind === 'failed');
    if (failed) return { ...failed, wireBytes };
    const retries = results.filter((r) => r.kind === 'retry');
    if (retries.length > 0)
      return {
        kind: 'retry',
        afterMs: Math.max(...retries.map((r) => (r.kind === 'retry' ? r.afterMs : 0))),
        reason: retries[0].kind === 'retry' ? retries[0].reason : '',
        wireBytes,
      };
    const rejected: { seq: number; reason: string }[] = [];
    let ringVersion = 0;
    results.forEach((r, i) => {
      if (r.kind === 'rejected') rejected.push({ seq: batches[i].seq, reason: r.reason });
      else if (r.kind === 'ok') ringVersion = Math.max(ringVersion, r.ringVersion);
    });
    if (rejected.length === batches.length) return { kind: 'rejected', reason: rejected[0].reason, wireBytes };
    return { kind: 'ok', ringVersion, rejected, wireBytes };
  }

  private sendOne(client: UplinkStub, batch: StoredBatch, deadlineMs: number): Promise<SendResult> {
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
    return new Promise((resolve) => {
      client.Send(req, this.metadata, { deadline: Date.now() + deadlineMs }, (err, ack) => {
        if (err) {
          const code = grpc.status[err.code] ?? String(err.code);
          if (PERMANENT.has(err.code)) return resolve({ kind: 'rejected', reason: `${code}: ${err.details}` });
          return resolve({ kind: 'failed', code, reason: explain(err) });
        }
        resolve(fromAck(ack!));
      });
    });
  }

  async close(): Promise<void> {
    for (const st of this.streams.values()) st.close();
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

/** A packed record's batches as plain stored batches (zstd OTLP each), for receivers that take one per call. */
function unpacked(b: StoredBatch, zstd: ZstdCompressor): StoredBatch[] {
  return segmentsOf(b).map((s) => ({
    seq: s.seq,
    route: b.route,
    signal: s.signal,
    compression: Compression.ZSTD,
    points: s.points,
    createdMs: b.createdMs,
    payload: zstd.compress(s.otlp),
  }));
}
