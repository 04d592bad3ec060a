import type { Admission } from '../../runtime/processors/memory-limiter.js';
import { Signal } from '../../protocol/otlp/signal.js';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ProtoError } from '../../protocol/errors.js';
import { Compression } from '../../protocol/compression.js';
import { AckStatus, type RingInfo, type UplinkAck, type UplinkBatch } from '../../protocol/uplink/messages.js';
import type { AgentTokens } from './tokens.js';
import { decodeRequest, inflateBatch } from './batch-decoder.js';
import type { ExportItem } from '../export/queue.js';
import type { BatchId } from '../state/types.js';
import type { DeviceData } from '../device/types.js';
import { stampData, stampRequest } from '../tenants/stamp.js';
import type { Quotas, RateQuota } from '../tenants/quotas.js';
import type { LogSampler, Sampled } from '../tenants/sampling.js';
import type { IngestAttributes } from './attribute-processors.js';
import { countItems } from '../../protocol/otlp/split.js';

/** Where decoded batches go: the node's state store (and, in a cluster, the owners of other devices). */
export interface BatchSink {
  /**
   * Resolves when the batch's effect is durable; `duplicate` when (source, seq) was applied before. `source` is the
   * OTLP request the data was read from, when there is one: it is what owners receive and exporters send.
   */
  apply(
    batch: DeviceData[],
    dedup: BatchId | null,
    source?: ExportItem,
  ): Promise<{ duplicate: boolean; points: number }>;
}

export interface UplinkIngestHooks {
  onBatch?(
    outcome: 'ok' | 'duplicate' | 'rejected' | 'retry' | 'unauthenticated',
    agentId: string,
    points: number,
  ): void;
  onTiming?(decodeMs: number, applyMs: number): void;
  /** A batch's data is durable in state (not for duplicates): for the reading → durable delay. */
  onApplied?(data: readonly DeviceData[], durableAtMs: number): void;
  /** A batch answered RETRY because memory is over the limiter's soft limit. */
  onMemoryRefused?(): void;
  /** A batch answered RETRY because its tenant is over a rate quota. */
  onQuotaRefused?(tenant: string, quota: RateQuota): void;
  /** A logs batch went through event sampling. */
  onSampled?(tenant: string, s: Sampled): void;
}

/** The processors ingest applies, those configured. */
export interface IngestProcessors {
  /** The memory limiter: over its soft limit batches are answered RETRY (OTLP: overloaded). */
  admission?: Admission;
  /** Per-tenant quotas: a tenant over a rate is answered RETRY with the delay (OTLP: overloaded). */
  quotas?: Quotas;
  /** Event sampling per tenant: log records left out before anything is stored or exported. */
  sampler?: LogSampler;
  /** The attributes and redaction processors, applied first. */
  attributes?: IngestAttributes;
}

/** One stored batch of an agent, as Send carries it or as a segment of a stream frame. */
export type IncomingBatch = Pick<
  UplinkBatch,
  'agentId' | 'seq' | 'signal' | 'compression' | 'payload' | 'ackedBelow' | 'bufferId'
>;

/** How long an agent waits before resending when this node could not store its batch. */
const RETRY_AFTER_MS = 1000;

/**
 * The uplink gRPC service: authenticates the agent, decodes its batch, hands it to the sink and answers OK only
 * when the sink says the effect is durable. A retried batch (same agent and seq) is acknowledged again without being
 * applied twice. Unreadable payloads are REJECTED (never worth a retry); storage trouble is RETRY.
 */
export class UplinkIngest {
  private stopping = false;

  constructor(
    private readonly tokens: () => AgentTokens,
    private readonly sink: BatchSink,
    private readonly ring: () => RingInfo,
    private readonly log: Logger,
    private readonly hooks: UplinkIngestHooks = {},
    private readonly processors: IngestProcessors = {},
  ) {}

  /** Further batches are answered RETRY (the node is shutting down; the agent resends elsewhere or later). */
  stop(): void {
    this.stopping = true;
  }

  readonly implementation = {
    Send: (call: grpc.ServerUnaryCall<UplinkBatch, UplinkAck>, cb: grpc.sendUnaryData<UplinkAck>) => {
      this.send(call).then(
        (ack) => cb(null, ack),
        (err: grpc.ServiceError) => cb(err),
      );
    },
    // The token was checked before the call was read (see call-auth.ts): the ring names member addresses.
    GetRing: (_call: grpc.ServerUnaryCall<object, RingInfo>, cb: grpc.sendUnaryData<RingInfo>) => cb(null, this.ring()),
  };

  private ack(status: AckStatus, reason = '', retryAfterMs = 0): UplinkAck {
    return { status, reason, retryAfterMs, ringVersion: this.ring().version };
  }

  /** The ring version answers carry. */
  get ringVersion(): number {
    return this.ring().version;
  }

  /** The agent tokens in force. */
  get agentTokens(): AgentTokens {
    return this.tokens();
  }

  private async send(call: grpc.ServerUnaryCall<UplinkBatch, UplinkAck>): Promise<UplinkAck> {
    const b = call.request;
    if (!b.agentId) throw status(grpc.status.INVALID_ARGUMENT, 'agent_id is required');
    const denied = this.tokens().check(call.metadata.get('authorization')[0] as string | undefined, b.agentId);
    if (denied !== null) {
      this.hooks.onBatch?.('unauthenticated', b.agentId, 0);
      this.log.warn({ agent: b.agentId, peer: call.getPeer(), reason: denied }, 'uplink refused');
      throw status(grpc.status.UNAUTHENTICATED, denied);
    }
    if (!b.seq) throw status(grpc.status.INVALID_ARGUMENT, 'seq is required (agents number batches from 1)');
    return this.apply(b, undefined, this.tokens().tenantOf(b.agentId));
  }

  /**
   * Decodes one stored batch of an authenticated agent and applies it: OK once durable (or a duplicate), REJECTED
   * when it can never be read, RETRY when it could not be stored now. `decoded` gives its data when it was decoded
   * already (a stream frame's columns), throwing as decodeBatch would. What it holds is stamped as `tenant`'s
   * ('' = in no tenant; tenants/stamp.ts).
   */
  async apply(
    b: IncomingBatch,
    decoded?: () => DeviceData[],
    tenant = '',
    /** Bytes it took on the wire (a stream segment's share of its frame); default its payload's. */
    wireBytes = b.payload.length,
  ): Promise<UplinkAck> {
    if (this.stopping) return this.ack(AckStatus.RETRY, 'node is shutting down', RETRY_AFTER_MS);
    const admission = this.processors.admission;
    admission?.taken(b.payload.length);
    if (admission?.refusing) {
      this.hooks.onMemoryRefused?.();
      return this.ack(AckStatus.RETRY, "this node's memory is over its soft limit", RETRY_AFTER_MS);
    }
    if (b.signal !== Signal.METRICS && b.signal !== Signal.LOGS) {
      return this.rejected(b, `unknown signal ${b.signal}; expected METRICS (1) or LOGS (2)`);
    }
    const t0 = performance.now();
    let data: DeviceData[];
    let source: ExportItem | undefined;
    const attrs = this.processors.attributes;
    try {
      if (decoded) {
        data = decoded();
        attrs?.data(data);
        stampData(data, tenant);
        // A stream segment read into device data and rebuilt as well (exporters need its OTLP).
        if (b.payload.length > 0) {
          const otlp = stampRequest(attrs ? attrs.request(b.signal, b.payload) : b.payload, tenant);
          source = { signal: b.signal, otlp, points: pointsOf(b.signal, data) };
        }
      } else {
        const inflated = inflateBatch(b.signal, b.compression, b.payload);
        const raw = stampRequest(attrs ? attrs.request(b.signal, inflated) : inflated, tenant);
        data = decodeRequest(b.signal, raw);
        source = { signal: b.signal, otlp: raw, points: pointsOf(b.signal, data) };
        // The agent's compressed bytes are what exporters may send on as they are, unless stamping changed them.
        if (b.compression !== Compression.NONE && raw === inflated)
          source.compressed = { bytes: b.payload, compression: b.compression };
      }
    } catch (e) {
      if (e instanceof ProtoError) return this.rejected(b, `${e.code}: ${e.message}`);
      // Anything else thrown while reading untrusted bytes (a RangeError, say) is still this payload's doing:
      // answered REJECTED with the reason, not as a gRPC UNKNOWN the agent would retry forever.
      this.log.error({ agent: b.agentId, seq: b.seq, err: (e as Error).message }, 'batch could not be decoded');
      return this.rejected(b, `OTLPEDGE_PROTO_MALFORMED: payload could not be decoded: ${(e as Error).message}`);
    }
    const sampler = this.processors.sampler;
    if (sampler !== undefined && b.signal === Signal.LOGS && source !== undefined) {
      let s: Sampled;
      try {
        s = sampler.sample(tenant, source.otlp);
      } catch (e) {
        return this.rejected(b, e instanceof ProtoError ? `${e.code}: ${e.message}` : (e as Error).message);
      }
      this.hooks.onSampled?.(tenant, s);
      if (s.request !== source.otlp) source = { signal: source.signal, otlp: s.request, points: source.points };
    }
    const t1 = performance.now();
    const quotas = this.processors.quotas;
    if (quotas !== undefined && tenant !== '') {
      const metrics = b.signal === Signal.METRICS;
      const events = !metrics && source !== undefined ? countItems(Signal.LOGS, source.otlp) : 0;
      const over = quotas.admit(tenant, metrics ? pointsOf(b.signal, data) : 0, events, wireBytes);
      if (over !== null) {
        this.hooks.onQuotaRefused?.(tenant, over.quota);
        return this.ack(AckStatus.RETRY, over.message, over.retryAfterMs);
      }
    }
    try {
      const r = await this.sink.apply(
        data,
        { source: b.agentId, seq: b.seq, ackedBelow: b.ackedBelow, bufferId: b.bufferId },
        source,
      );
      this.hooks.onTiming?.(t1 - t0, performance.now() - t1);
      this.hooks.onBatch?.(r.duplicate ? 'duplicate' : 'ok', b.agentId, r.points);
      if (!r.duplicate) this.hooks.onApplied?.(data, Date.now());
      return this.ack(AckStatus.OK);
    } catch (e) {
      this.hooks.onBatch?.('retry', b.agentId, 0);
      this.log.error(
        { agent: b.agentId, seq: b.seq, err: (e as Error).message },
        'batch could not be stored; agent will retry',
      );
      return this.ack(AckStatus.RETRY, `could not be stored: ${(e as Error).message}`, RETRY_AFTER_MS);
    }
  }

  private rejected(b: IncomingBatch, reason: string): UplinkAck {
    this.hooks.onBatch?.('rejected', b.agentId, 0);
    this.log.warn({ agent: b.agentId, seq: b.seq, reason }, 'batch rejected');
    return this.ack(AckStatus.REJECTED, reason);
  }
}

/** An agent's metrics are number points only, all in the decoded data; logs are counted if queued (-1). */
function pointsOf(signal: Signal, data: readonly DeviceData[]): number {
  return signal === Signal.METRICS ? data.reduce((n, d) => n + d.metric.length + d.seq.length, 0) : -1;
}

export function status(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() }) as grpc.ServiceError;
}
