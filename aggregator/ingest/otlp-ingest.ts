import type { Admission } from '../../runtime/processors/memory-limiter.js';
import type { Logger } from 'pino';
import { Signal, signalName } from '../../protocol/otlp/signal.js';
import { ProtoError } from '../../protocol/errors.js';
import { joinEntries, resourceEntries, type ResourceEntry } from '../../protocol/otlp/split.js';
import { decodeRequest } from './batch-decoder.js';
import type { BatchSink } from './uplink-service.js';
import type { DeviceStateStore } from '../state/store.js';
import { stampRequest } from '../tenants/stamp.js';
import type { Quotas, RateQuota } from '../tenants/quotas.js';
import type { LogSampler, Sampled } from '../tenants/sampling.js';
import type { IngestAttributes } from './attribute-processors.js';

/** Why an OTLP request was not taken, as OTLP answers it. */
export class OtlpRefusal extends Error {
  constructor(
    /** bad_data: 400 / INVALID_ARGUMENT; overloaded: 429 / UNAVAILABLE; unavailable: 503 / UNAVAILABLE. */
    readonly kind: 'bad_data' | 'overloaded' | 'unavailable',
    message: string,
    /** When the client should try again (Retry-After, RetryInfo). */
    readonly retryAfterMs = 0,
  ) {
    super(message);
  }
}

export interface OtlpIngestHooks {
  /** A request's points by where they went: state (device data), export (other data), refused (partial success). */
  onAccepted?(signal: Signal, toState: number, toExport: number, refused: number): void;
  onRefused?(signal: Signal, kind: OtlpRefusal['kind']): void;
  /** A request refused because memory is over the limiter's soft limit. */
  onMemoryRefused?(): void;
  /** A request refused because its tenant is over a rate quota. */
  onQuotaRefused?(tenant: string, quota: RateQuota): void;
  /** A logs request went through event sampling. */
  onSampled?(tenant: string, s: Sampled): void;
}

export interface OtlpIngestOptions {
  /** Request bytes (inflated) being handled at once past which new requests are answered "overloaded". */
  maxInFlightBytes: number;
  /** Why the node cannot take data now (shutting down, store unusable), or null. */
  notReady: () => string | null;
  /** The memory limiter, when configured: over its soft limit requests are answered "overloaded". */
  admission?: Admission;
  /** The tenant of a source ('' = none): its resources are stamped `tenant.id` (tenants/stamp.ts). */
  tenantOf?: (sourceId: string) => string;
  /** Per-tenant quotas, when configured: a tenant over a rate is answered "overloaded" with the delay. */
  quotas?: Quotas;
  /** Event sampling per tenant, when configured: log records left out before anything is stored or exported. */
  sampler?: LogSampler;
  /** The attributes and redaction processors, when configured: applied first. */
  attributes?: IngestAttributes;
}

/** How long a client waits before it retries when this node is overloaded or not ready. */
const RETRY_OVERLOADED_MS = 1000;
const RETRY_UNAVAILABLE_MS = 5000;

/**
 * Standard OTLP received over gRPC or HTTP (both transports end here). A request is cut along its resources:
 * resources that carry `device.id` (metrics and logs) are device data, applied to their devices' state exactly like
 * uplinked data (routed to their owners in a cluster) and queued for export with it; the rest (resources without
 * device.id, and all traces) is not device state and goes straight to the export queues. The answer comes only once
 * everything taken is durable. Data no exporter takes (no exporter for the signal) is refused as a partial success,
 * never acknowledged and dropped silently.
 */
export class OtlpIngest {
  private inFlight = 0;

  constructor(
    private readonly sink: BatchSink,
    private readonly store: () => DeviceStateStore | null,
    private readonly exportsTake: (signal: Signal) => boolean,
    private readonly opts: OtlpIngestOptions,
    private readonly log: Logger,
    private readonly hooks: OtlpIngestHooks = {},
  ) {}

  /**
   * Takes one inflated Export*ServiceRequest from `source` (`wireBytes`: its size as received, for quotas); resolves
   * with the points refused (partial success).
   */
  async accept(
    sourceId: string,
    signal: Signal,
    raw: Uint8Array,
    wireBytes = raw.length,
  ): Promise<{ rejected: number; message: string }> {
    const notReady = this.opts.notReady();
    const store = this.store();
    if (notReady !== null || store === null)
      throw this.refuse(
        signal,
        new OtlpRefusal(
          'unavailable',
          `this node cannot store data now: ${notReady ?? 'starting'}`,
          RETRY_UNAVAILABLE_MS,
        ),
      );
    const admission = this.opts.admission;
    admission?.taken(raw.length);
    if (admission?.refusing) {
      this.hooks.onMemoryRefused?.();
      throw this.refuse(
        signal,
        new OtlpRefusal('overloaded', "this node's memory is over its soft limit; retry later", RETRY_OVERLOADED_MS),
      );
    }
    if (this.inFlight > 0 && this.inFlight + raw.length > this.opts.maxInFlightBytes)
      throw this.refuse(
        signal,
        new OtlpRefusal(
          'overloaded',
          `this node is handling ${this.inFlight} bytes of OTLP requests already; retry later`,
          RETRY_OVERLOADED_MS,
        ),
      );
    this.inFlight += raw.length;
    try {
      return await this.take(store, sourceId, signal, raw, wireBytes);
    } finally {
      this.inFlight -= raw.length;
    }
  }

  private async take(
    store: DeviceStateStore,
    sourceId: string,
    signal: Signal,
    raw: Uint8Array,
    wireBytes: number,
  ): Promise<{ rejected: number; message: string }> {
    let devices: ResourceEntry[] = [];
    let other: ResourceEntry[] = [];
    let data;
    const tenant = this.opts.tenantOf?.(sourceId) ?? '';
    try {
      if (this.opts.attributes) raw = this.opts.attributes.request(signal, raw);
      raw = stampRequest(raw, tenant);
      if (signal === Signal.LOGS && this.opts.sampler) {
        const s = this.opts.sampler.sample(tenant, raw);
        this.hooks.onSampled?.(tenant, s);
        raw = s.request;
      }
      const entries = resourceEntries(signal, raw);
      if (signal === Signal.TRACES) other = entries;
      else {
        devices = entries.filter((e) => e.deviceId !== '');
        other = entries.filter((e) => e.deviceId === '');
      }
      data = devices.length > 0 ? decodeRequest(signal, joinEntries(raw, devices)) : [];
    } catch (e) {
      const reason =
        e instanceof ProtoError ? `${e.code}: ${e.message}` : `the request could not be read: ${(e as Error).message}`;
      throw this.refuse(signal, new OtlpRefusal('bad_data', reason));
    }
    const count = (list: ResourceEntry[]) => list.reduce((n, e) => n + e.items, 0);
    const toState = count(devices);
    let toExport = count(other);
    let rejected = 0;
    let message = '';
    if (toExport > 0 && !this.exportsTake(signal)) {
      rejected = toExport;
      toExport = 0;
      message = `this node exports no ${signalName(signal)} (no exporter configured for them): ${rejected} ${signal === Signal.TRACES ? 'spans' : signal === Signal.LOGS ? 'log records' : 'data points'} without device.id were not kept`;
    }
    const over = this.opts.quotas?.admit(
      tenant,
      signal === Signal.METRICS ? toState + toExport : 0,
      signal === Signal.LOGS ? toState + toExport : 0,
      wireBytes,
    );
    if (over) {
      this.hooks.onQuotaRefused?.(tenant, over.quota);
      throw this.refuse(signal, new OtlpRefusal('overloaded', over.message, over.retryAfterMs));
    }
    try {
      await Promise.all([
        devices.length > 0
          ? this.sink.apply(data, null, { signal, otlp: joinEntries(raw, devices), points: toState })
          : undefined,
        toExport > 0 ? store.exports.enqueue({ signal, otlp: joinEntries(raw, other), points: toExport }) : undefined,
      ]);
    } catch (e) {
      this.log.error(
        { source: sourceId, signal: signalName(signal), err: (e as Error).message },
        'OTLP request could not be stored; the client will retry',
      );
      throw this.refuse(
        signal,
        new OtlpRefusal('unavailable', `could not be stored: ${(e as Error).message}`, RETRY_OVERLOADED_MS),
      );
    }
    this.hooks.onAccepted?.(signal, toState, toExport, rejected);
    return { rejected, message };
  }

  private refuse(signal: Signal, r: OtlpRefusal): OtlpRefusal {
    this.hooks.onRefused?.(signal, r.kind);
    return r;
  }
}
