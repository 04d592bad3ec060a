import * as grpc from '@grpc/grpc-js';
import { FRAME_FORMAT, type Segment } from '../../protocol/uplink/frame/frame-codec.js';
import { UplinkStreamEncoder } from '../../protocol/uplink/frame/stream.js';
import { AckStatus, type FrameAck, type UplinkFrame } from '../../protocol/uplink/messages.js';
import type { StoredBatch } from '../buffer/record.js';
import { segmentsOf } from '../buffer/pack.js';
import { explain } from './grpc-status.js';
import type { SendResult } from './transport.js';

export type StreamStub = {
  Stream(md: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientDuplexStream<UplinkFrame, FrameAck>;
};

export interface FrameStreamOptions {
  agentId: string;
  bufferId: number;
  metadata: grpc.Metadata;
  zstdLevel: number;
  /** The aggregator does not take streams (or not this frame format): batches go by Send meanwhile. */
  onRefused(reason: string): void;
  /** A stream idle at a frame's start after this long is closed and a new one opened; default 10 minutes. */
  maxLifetimeMs?: number;
  /** A stream with nothing sent for this long is closed (its state freed at both ends); default 2 minutes. */
  idleCloseMs?: number;
}

/** How long an aggregator that refused streams is sent batches one by one before a stream is tried again. */
const REFUSED_FOR_MS = 10 * 60_000;
/**
 * Streams are renewed this often (at a moment no frame is in flight), so a long-lived agent does not stay pinned to
 * the node a load balancer gave it, and the state both ends hold starts afresh.
 */
const MAX_LIFETIME_MS = 10 * 60_000;
/** An aggregator no batch went to for this long (it left the ring, say) has its stream closed. */
const IDLE_CLOSE_MS = 2 * 60_000;

type Result = SendResult & { wireBytes: number };

interface Pending {
  resolve: (r: Result) => void;
  timer: NodeJS.Timeout;
  wireBytes: number;
}

/**
 * The uplink stream to one aggregator: each group of stored batches is one frame, coded against the state this
 * stream shares with the aggregator (protocol/uplink/frame/). The stream opens with the first frame and lives until
 * it fails; its state goes with it, and the next frame opens a new stream with a new state. Frames in flight when a
 * stream ends are answered here so the sender sends their batches again (the aggregator deduplicates each batch).
 */
export class FrameStream {
  private call: grpc.ClientDuplexStream<UplinkFrame, FrameAck> | null = null;
  private openedAt = 0;
  private lastSentAt = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private encoder: UplinkStreamEncoder | null = null;
  private next = 1;
  private readonly pending = new Map<number, Pending>();
  private refusedUntil = 0;

  constructor(
    private readonly stub: StreamStub,
    readonly address: string,
    private readonly opts: FrameStreamOptions,
  ) {}

  /** False while the aggregator is known not to take streams. */
  get usable(): boolean {
    return Date.now() >= this.refusedUntil;
  }

  async send(batches: readonly StoredBatch[], deadlineMs: number, ackedBelow: number): Promise<Result> {
    const segments: Segment[] = [];
    let points = 0;
    try {
      for (const b of batches) {
        for (const s of segmentsOf(b)) segments.push(s);
        points += b.points;
      }
    } catch (e) {
      // A stored batch that does not inflate goes alone, as stored: the aggregator rejects it, and only it.
      return { kind: 'split', reason: `a stored batch could not be read: ${(e as Error).message}`, wireBytes: 0 };
    }
    if (
      this.call !== null &&
      this.pending.size === 0 &&
      Date.now() - this.openedAt > (this.opts.maxLifetimeMs ?? MAX_LIFETIME_MS)
    ) {
      this.retire();
    }
    if (this.call === null) this.open();
    const call = this.call!;
    let payload: Uint8Array;
    try {
      payload = this.encoder!.encode(segments);
    } catch (e) {
      this.end(call, { kind: 'split', reason: `the batches could not be coded as a frame: ${(e as Error).message}` });
      return { kind: 'split', reason: (e as Error).message, wireBytes: 0 };
    }
    const frame = this.next++;
    const first = frame === 1;
    this.lastSentAt = Date.now();
    this.watchIdle();
    return new Promise<Result>((resolve) => {
      const timer = setTimeout(
        () =>
          this.end(call, {
            kind: 'failed',
            code: 'DEADLINE_EXCEEDED',
            reason: 'the aggregator did not answer in time',
          }),
        deadlineMs,
      );
      this.pending.set(frame, { resolve, timer, wireBytes: payload.length });
      call.write({
        frame,
        payload,
        points,
        segments: segments.length,
        ackedBelow,
        ringVersion: 0,
        agentId: first ? this.opts.agentId : '',
        bufferId: first ? this.opts.bufferId : 0,
        format: first ? FRAME_FORMAT : 0,
      });
    });
  }

  private open(): void {
    const call = this.stub.Stream(this.opts.metadata, {});
    this.call = call;
    this.openedAt = Date.now();
    this.encoder = new UplinkStreamEncoder(this.opts.zstdLevel);
    this.next = 1;
    call.on('data', (ack: FrameAck) => {
      const p = this.pending.get(ack.frame);
      if (p === undefined || call !== this.call) return;
      this.pending.delete(ack.frame);
      clearTimeout(p.timer);
      p.resolve({ ...fromFrameAck(ack), wireBytes: p.wireBytes });
    });
    call.on('error', (err: grpc.ServiceError) => this.end(call, this.failure(err)));
    call.on('end', () =>
      this.end(call, { kind: 'failed', code: 'STREAM_ENDED', reason: 'the aggregator ended the uplink stream' }),
    );
  }

  /** What frames in flight come to when the stream fails with `err`. */
  private failure(err: grpc.ServiceError): SendResult {
    const code = grpc.status[err.code] ?? String(err.code);
    if (err.code === grpc.status.UNIMPLEMENTED || err.code === grpc.status.FAILED_PRECONDITION) {
      this.refusedUntil = Date.now() + REFUSED_FOR_MS;
      const reason = `${this.address} does not take uplink streams (${code}: ${err.details}); stored batches go one per request to it, uncombined (upgrade the aggregator)`;
      this.opts.onRefused(reason);
      return { kind: 'retry', afterMs: 0, reason };
    }
    // The aggregator could not read a frame: the shared state is lost; the batches go alone.
    if (err.code === grpc.status.INVALID_ARGUMENT) return { kind: 'split', reason: `${code}: ${err.details}` };
    return { kind: 'failed', code, reason: explain(err) };
  }

  /** Ends `call` (if still current) and answers every frame in flight with `result`. */
  private end(call: grpc.ClientDuplexStream<UplinkFrame, FrameAck>, result: SendResult): void {
    if (call !== this.call) return;
    this.call = null;
    this.encoder = null;
    call.cancel();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.resolve({ ...result, wireBytes: p.wireBytes });
    }
    this.pending.clear();
  }

  /**
   * Half-closes the stream (nothing is in flight): the aggregator ends it, and its events are stale from now on. The
   * next frame opens a new stream with a fresh state.
   */
  private retire(): void {
    this.call?.end();
    this.call = null;
    this.encoder = null;
  }

  /** Closes the stream once nothing was sent on it for idleCloseMs (and nothing is in flight). */
  private watchIdle(): void {
    if (this.idleTimer !== null) return;
    const idle = this.opts.idleCloseMs ?? IDLE_CLOSE_MS;
    const check = () => {
      this.idleTimer = null;
      if (this.call === null) return;
      const quiet = Date.now() - this.lastSentAt;
      if (quiet >= idle && this.pending.size === 0) return this.retire();
      this.idleTimer = setTimeout(check, Math.max(this.pending.size > 0 ? 1000 : 10, idle - quiet));
      this.idleTimer.unref();
    };
    this.idleTimer = setTimeout(check, idle);
    this.idleTimer.unref();
  }

  close(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (this.call !== null)
      this.end(this.call, { kind: 'failed', code: 'CLOSED', reason: 'the uplink is shutting down' });
  }
}

function fromFrameAck(ack: FrameAck): SendResult {
  const rejected = ack.rejected.map((seq) => ({ seq, reason: ack.reason || 'rejected without a reason' }));
  switch (ack.status) {
    case AckStatus.OK:
      return { kind: 'ok', ringVersion: ack.ringVersion, rejected };
    case AckStatus.RETRY:
      // Segments rejected in a frame answered RETRY are still final; the sender resends the whole frame and the
      // aggregator rejects them again, so they are not singled out here.
      return { kind: 'retry', afterMs: ack.retryAfterMs, reason: ack.reason || 'aggregator asked to retry' };
    default:
      return {
        kind: 'failed',
        code: 'BAD_ACK',
        reason: `aggregator answered frame ${ack.frame} with status ${ack.status}`,
      };
  }
}
