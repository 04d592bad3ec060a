import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Compression } from '../../protocol/compression.js';
import { ProtoError } from '../../protocol/errors.js';
import { FRAME_FORMAT, type Segment } from '../../protocol/uplink/frame/frame-codec.js';
import { UplinkStreamDecoder } from '../../protocol/uplink/frame/stream.js';
import { AckStatus, type FrameAck, type UplinkFrame } from '../../protocol/uplink/messages.js';
import { status, type UplinkIngest } from './uplink-service.js';
import { DeviceDataCollector } from './batch-decoder.js';

/**
 * Largest a frame may inflate to (its body, and separately the OTLP its segments rebuild): agents cut frames near
 * 16,000 points (about 1.2 MB of OTLP); the bound leaves room and keeps a hostile frame from taking much memory.
 */
export const MAX_FRAME_INFLATED = 32 << 20;
/** Frames of one stream being applied at once; past it the stream is paused (the agent's own window is smaller). */
const MAX_FRAMES_IN_PROGRESS = 16;
/**
 * Streams open at once, per agent and per node. An agent keeps one per aggregator it sends to (a reconnect may leave
 * the old one open for a moment); each stream's state is bounded (protocol/uplink/frame/state.ts LIMITS), and these
 * bound how many such states a token, or all agents, can make the node hold.
 */
export const MAX_STREAMS_PER_AGENT = 8;
export const MAX_STREAMS = 4096;

export interface StreamIngestHooks {
  onFrame?(outcome: 'ok' | 'retry' | 'partly_rejected', segments: number, bytes: number): void;
  /** A stream ended on a frame it could not read (or that broke the protocol). */
  onStreamError?(agentId: string, reason: string): void;
  onStreams?(delta: 1 | -1): void;
  /** A stream was refused at its first frame (logged by the caller, rate-limited). */
  onRefused?(reason: StreamRefusal, agentId: string, detail: string): void;
  /** A frame was decoded (inflated, and its columns read into device data) in `ms`. */
  onDecoded?(ms: number): void;
}

type Call = grpc.ServerDuplexStream<UplinkFrame, FrameAck>;

export type StreamRefusal = 'no_agent' | 'agent_token' | 'stream_limit' | 'format';
type Refused = { code: grpc.status; details: string; reason: StreamRefusal };

/**
 * The uplink's Stream method: frames of stored batches from one agent, coded against the stream's state
 * (protocol/uplink/frame/). Frames are decoded in arrival order (the state moves with each), then their segments
 * are applied like batches sent alone — each deduplicated by (agent, seq) — and each frame is answered once all
 * its segments are durable, in whatever order frames finish.
 *
 * A frame that cannot be read ends the stream (INVALID_ARGUMENT): the state both ends share is no longer the
 * same, and the agent sends what was not acknowledged on a new stream (or alone, through Send).
 */
export class StreamIngest {
  private readonly open = new Map<string, number>();
  private total = 0;
  /** Each open stream's way to end itself once its frames in progress are answered (at shutdown). */
  private readonly enders = new Set<() => Promise<void>>();

  constructor(
    private readonly ingest: UplinkIngest,
    private readonly log: Logger,
    private readonly hooks: StreamIngestHooks = {},
    /** Rebuild each segment's OTLP (exporters need it) instead of reading columns straight into device data. */
    private readonly rebuildOtlp = false,
  ) {}

  readonly handler = (call: Call): void => {
    const decoder = new UplinkStreamDecoder();
    let agentId = '';
    let bufferId = 0;
    let tenant = '';
    let expected = 1;
    let inProgress = 0;
    let ended = false;
    this.hooks.onStreams?.(1);
    const ender = async () => {
      while (inProgress > 0) await new Promise((r) => setTimeout(r, 5));
      finish(grpc.status.UNAVAILABLE, 'the aggregator is shutting down; send to another node or later');
    };
    this.enders.add(ender);
    const finish = (code: grpc.status | null, details = '') => {
      if (ended) return;
      ended = true;
      this.enders.delete(ender);
      this.hooks.onStreams?.(-1);
      if (agentId !== '') {
        this.total--;
        const n = (this.open.get(agentId) ?? 1) - 1;
        if (n === 0) this.open.delete(agentId);
        else this.open.set(agentId, n);
      }
      if (code === null) call.end();
      else {
        call.emit('error', status(code, details));
      }
    };
    call.on('error', () => finish(null));
    call.on('cancelled', () => finish(null));
    call.on('end', () => {
      // The agent closed its side: answer what is in progress, then close ours.
      const close = () => (inProgress === 0 ? finish(null) : setTimeout(close, 5));
      close();
    });
    call.on('data', (f: UplinkFrame) => {
      if (ended) return;
      if (expected === 1) {
        const refused = this.header(call, f);
        if (refused !== null) {
          this.hooks.onRefused?.(refused.reason, f.agentId, refused.details);
          return finish(refused.code, refused.details);
        }
        agentId = f.agentId;
        this.total++;
        this.open.set(agentId, (this.open.get(agentId) ?? 0) + 1);
        bufferId = f.bufferId;
        tenant = this.ingest.agentTokens.tenantOf(agentId);
      }
      if (f.frame !== expected)
        return finish(grpc.status.INVALID_ARGUMENT, `frame ${f.frame} arrived where frame ${expected} was due`);
      expected++;
      let segments: Segment[];
      const t0 = performance.now();
      try {
        // Metrics carried as columns go straight into device data; their OTLP is rebuilt too when exporters need it.
        segments = decoder.decode(f.payload, MAX_FRAME_INFLATED, () => new DeviceDataCollector(), this.rebuildOtlp);
        this.hooks.onDecoded?.(performance.now() - t0);
        if (segments.length !== f.segments)
          throw new Error(`frame says ${f.segments} segments and holds ${segments.length}`);
      } catch (e) {
        const reason = e instanceof ProtoError ? `${e.code}: ${e.message}` : (e as Error).message;
        this.hooks.onStreamError?.(agentId, reason);
        this.log.warn(
          { agent: agentId, frame: f.frame, reason },
          'uplink stream frame could not be read; stream ended',
        );
        return finish(grpc.status.INVALID_ARGUMENT, `frame ${f.frame} could not be read: ${reason}`);
      }
      inProgress++;
      if (inProgress >= MAX_FRAMES_IN_PROGRESS) call.pause();
      void this.frame(f, segments, agentId, bufferId, tenant).then((ack) => {
        inProgress--;
        if (inProgress < MAX_FRAMES_IN_PROGRESS) call.resume();
        if (!ended) call.write(ack);
      });
    });
  };

  /** Ends every stream once its frames in progress are answered (they are answered RETRY while stopping). */
  async stop(): Promise<void> {
    await Promise.all([...this.enders].map((end) => end()));
  }

  /** Checks the first frame: the stream's agent (against its token) and frame format. */
  private header(call: Call, f: UplinkFrame): Refused | null {
    if (!f.agentId)
      return { code: grpc.status.INVALID_ARGUMENT, details: 'the first frame must name agent_id', reason: 'no_agent' };
    const denied = this.ingest.agentTokens.check(
      call.metadata.get('authorization')[0] as string | undefined,
      f.agentId,
    );
    if (denied !== null) return { code: grpc.status.UNAUTHENTICATED, details: denied, reason: 'agent_token' };
    if ((this.open.get(f.agentId) ?? 0) >= MAX_STREAMS_PER_AGENT || this.total >= MAX_STREAMS)
      return {
        code: grpc.status.RESOURCE_EXHAUSTED,
        details:
          this.total >= MAX_STREAMS
            ? `this node has ${MAX_STREAMS} uplink streams open; try another node or later`
            : `agent '${f.agentId}' has ${MAX_STREAMS_PER_AGENT} uplink streams open to this node already`,
        reason: 'stream_limit',
      };
    if (f.format !== FRAME_FORMAT)
      return {
        code: grpc.status.FAILED_PRECONDITION,
        details: `the agent codes frames in format ${f.format}; this aggregator reads format ${FRAME_FORMAT} (upgrade the aggregator; the agent sends batches one by one meanwhile)`,
        reason: 'format',
      };
    return null;
  }

  private async frame(
    f: UplinkFrame,
    segments: Segment[],
    agentId: string,
    bufferId: number,
    tenant: string,
  ): Promise<FrameAck> {
    const acks = await Promise.all(
      segments.map((s) => {
        const collected = s.visitor as DeviceDataCollector | undefined;
        return this.ingest.apply(
          {
            agentId,
            seq: s.seq,
            signal: s.signal,
            compression: Compression.NONE,
            payload: s.otlp,
            ackedBelow: f.ackedBelow,
            bufferId,
          },
          collected ? () => collected.result() : undefined,
          tenant,
          Math.ceil(f.payload.length / segments.length),
        );
      }),
    );
    const ack: FrameAck = {
      frame: f.frame,
      status: AckStatus.OK,
      retryAfterMs: 0,
      reason: '',
      ringVersion: this.ingest.ringVersion,
      rejected: [],
    };
    for (let i = 0; i < acks.length; i++) {
      const a = acks[i];
      if (a.status === AckStatus.RETRY) {
        ack.status = AckStatus.RETRY;
        ack.retryAfterMs = Math.max(ack.retryAfterMs, a.retryAfterMs);
        ack.reason = a.reason;
      } else if (a.status === AckStatus.REJECTED) {
        ack.rejected.push(segments[i].seq);
        if (ack.status === AckStatus.OK) ack.reason = a.reason;
      }
    }
    this.hooks.onFrame?.(
      ack.status === AckStatus.RETRY ? 'retry' : ack.rejected.length ? 'partly_rejected' : 'ok',
      segments.length,
      f.payload.length,
    );
    return ack;
  }
}
