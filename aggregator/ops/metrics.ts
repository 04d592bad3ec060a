import type { MemoryLimiterGauges } from '../../runtime/processors/memory-limiter.js';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RateLimitedLog } from '../../runtime/log/rate-limited-log.js';
import type { StreamIngestHooks } from '../ingest/stream-service.js';
import type { Logger } from 'pino';
import type { DeviceStateOptions } from '../state/types.js';
import type { Sampled } from '../tenants/sampling.js';
import type { ProcessorCounters } from '../../runtime/processors/chain.js';
import { talliedCounter } from '../../runtime/ops/tallied-counter.js';

/** Everything an aggregator node exposes on /metrics (one registry per node). */
export class AggregatorMetrics {
  readonly registry = new Registry();
  readonly memoryState = new Gauge({
    name: 'otlp_edge_aggregator_memory_limiter_state',
    help: 'Memory limiter: 0 under the soft limit, 1 over it (new input refused), 2 over the hard limit',
    registers: [this.registry],
  });
  readonly memoryLimit = new Gauge({
    name: 'otlp_edge_aggregator_memory_limiter_limit_bytes',
    help: 'The memory limiter’s limits of resident memory, by limit (soft, hard)',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  /** Where the memory limiter shows its limits and state. */
  readonly memoryGauges: MemoryLimiterGauges = {
    limits: (soft, hard) => {
      this.memoryLimit.set({ limit: 'soft' }, soft);
      this.memoryLimit.set({ limit: 'hard' }, hard);
    },
    state: (s) => this.memoryState.set(s),
  };
  readonly memoryRefused = new Counter({
    name: 'otlp_edge_aggregator_memory_limiter_refused_total',
    help: 'Uplink batches answered RETRY and OTLP requests refused (429 / UNAVAILABLE) over the memory soft limit',
    labelNames: ['ingest'] as const,
    registers: [this.registry],
  });
  readonly batches = new Counter({
    name: 'otlp_edge_aggregator_uplink_batches_total',
    help: 'Uplink batches by outcome (ok, duplicate, rejected, retry, unauthenticated)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly points = new Counter({
    name: 'otlp_edge_aggregator_points_ingested_total',
    help: 'Data points applied to device state (duplicates excluded)',
    registers: [this.registry],
  });
  readonly decodeSeconds = new Counter({
    name: 'otlp_edge_aggregator_decode_seconds_total',
    help: 'CPU time spent inflating and decoding uplink batches',
    registers: [this.registry],
  });
  readonly applySeconds = new Counter({
    name: 'otlp_edge_aggregator_apply_seconds_total',
    help: 'Time from decoded to durable (state update and disk), summed over batches',
    registers: [this.registry],
  });
  readonly ingestLatency = new Histogram({
    name: 'otlp_edge_aggregator_ingest_duration_seconds',
    help: 'Time from an uplink batch arriving to its durable ack',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly otlpRequests = new Counter({
    name: 'otlp_edge_aggregator_otlp_requests_total',
    help: 'OTLP requests (OTLP/gRPC and OTLP/HTTP) by transport, signal and outcome (ok or the HTTP status / gRPC code)',
    labelNames: ['transport', 'signal', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly otlpPoints = new Counter({
    name: 'otlp_edge_aggregator_otlp_points_total',
    help: 'Points (data points, log records, spans) of OTLP requests by destination: state (device data), export (data without device.id, traces), refused (no exporter takes it; told to the client as a partial success)',
    labelNames: ['signal', 'destination'] as const,
    registers: [this.registry],
  });
  readonly frames = new Counter({
    name: 'otlp_edge_aggregator_uplink_frames_total',
    help: 'Uplink stream frames (each carries several stored batches) by outcome (ok, retry, partly_rejected)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly frameBytes = new Counter({
    name: 'otlp_edge_aggregator_uplink_frame_bytes_total',
    help: 'Payload bytes of uplink stream frames as received',
    registers: [this.registry],
  });
  readonly streams = new Gauge({
    name: 'otlp_edge_aggregator_uplink_streams',
    help: 'Uplink streams open',
    registers: [this.registry],
  });
  readonly streamsRefused = new Counter({
    name: 'otlp_edge_aggregator_uplink_streams_refused_total',
    help: 'Uplink streams refused at their first frame, by reason (no_agent, agent_token, stream_limit, format)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly streamErrors = new Counter({
    name: 'otlp_edge_aggregator_uplink_stream_errors_total',
    help: 'Uplink streams ended because a frame could not be read',
    registers: [this.registry],
  });
  readonly readingDelay = new Histogram({
    name: 'otlp_edge_aggregator_reading_delay_seconds',
    help: "Time from a reading's timestamp (the device's clock) to its data being durable in this node's state",
    buckets: [
      0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1,
      2.5, 5, 10, 30, 60,
    ],
    registers: [this.registry],
  });
  readonly agentBufferRestarts = new Counter({
    name: 'otlp_edge_aggregator_agent_buffer_restarts_total',
    help: 'Agents whose batches came from a new buffer (a wiped data directory): their seqs start again from 1',
    registers: [this.registry],
  });
  readonly offlineTransitions = new Counter({
    name: 'otlp_edge_aggregator_device_offline_transitions_total',
    help: 'Devices that went silent past devices.offline_after',
    registers: [this.registry],
  });
  readonly forwardedPoints = new Counter({
    name: 'otlp_edge_aggregator_forwarded_points_total',
    help: 'Points forwarded to the nodes that own their devices',
    registers: [this.registry],
  });
  readonly forwardedBytes = new Counter({
    name: 'otlp_edge_aggregator_forwarded_bytes_total',
    help: 'Compressed bytes forwarded to owner nodes',
    registers: [this.registry],
  });
  readonly forwardLatency = new Histogram({
    name: 'otlp_edge_aggregator_forward_duration_seconds',
    help: 'Time for a forwarded part to be durable at its owner',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly handoffs = new Counter({
    name: 'otlp_edge_aggregator_handoff_devices_total',
    help: 'Device states handed to their new owner (out) or merged from a previous owner (in)',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });
  readonly callsRefused = new Counter({
    name: 'otlp_edge_aggregator_calls_refused_total',
    help: 'gRPC calls refused before their message was read: service (uplink, peer) and reason (agent_token, missing, malformed, bad_signature, clock_skew, not_clustered)',
    labelNames: ['service', 'reason'] as const,
    registers: [this.registry],
  });
  readonly apiRefused = new Counter({
    name: 'otlp_edge_aggregator_api_requests_refused_total',
    help: 'API requests refused: status 401 (no or unknown token) or 403 (role may not)',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly tokenReloads = new Counter({
    name: 'otlp_edge_aggregator_token_reloads_total',
    help: 'Token file reloads (SIGHUP) by file (agent, api) and outcome (ok, failed)',
    labelNames: ['file', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly metricLimitDropped = new Counter({
    name: 'otlp_edge_aggregator_points_dropped_max_metrics_total',
    help: 'Points dropped because their device already had devices.max_metrics distinct metric names',
    registers: [this.registry],
  });
  readonly quotaRefused = new Counter({
    name: 'otlp_edge_aggregator_quota_refused_total',
    help: 'Uplink batches answered RETRY and OTLP requests answered 429 / UNAVAILABLE because their tenant was over a rate quota (processors quotas)',
    labelNames: ['tenant', 'quota', 'ingest'] as const,
    registers: [this.registry],
  });
  readonly tenantRefused = new Counter({
    name: 'otlp_edge_aggregator_tenant_refused_points_total',
    help: "Points not applied to a device because it is another tenant's (other_tenant) or its tenant is at its device quota (devices)",
    labelNames: ['reason', 'tenant'] as const,
    registers: [this.registry],
  });
  /** Where the attributes and redaction processors count (plain numbers, added at each scrape). */
  readonly processorCounters: ProcessorCounters = {
    applied: talliedCounter(
      this.registry,
      'otlp_edge_aggregator_processor_attributes_applied_total',
      'Attributes actions that changed a data point, event or Resource, by processor (its place in processors:) and action',
      'processor',
      'action',
    ),
    redacted: talliedCounter(
      this.registry,
      'otlp_edge_aggregator_processor_redactions_total',
      'Pieces of text redacted, by processor (its place in processors:) and detector (key: a blocked key)',
      'processor',
      'detector',
    ),
  };
  readonly sampledRecords = new Counter({
    name: 'otlp_edge_aggregator_sampling_records_total',
    help: 'Events (log records) through event sampling, by tenant and outcome: kept (by probability), kept_severity (always kept), sampled_out',
    labelNames: ['tenant', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly stateOpenFailures = new Counter({
    name: 'otlp_edge_aggregator_state_open_failures_total',
    help: 'Attempts to open the state store that failed (e.g. a full disk); the node keeps trying',
    registers: [this.registry],
  });
  readonly devices: Gauge;
  readonly devicesOnline: Gauge;
  readonly ringVersion: Gauge;

  constructor(read: {
    devices(): number;
    online(): number;
    ringVersion(): number;
    /** Each tenant's event sampling probability (processors sampling), when configured. */
    samplingProbabilities?(): Map<string, number>;
  }) {
    new Gauge({
      name: 'otlp_edge_aggregator_sampling_probability',
      help: "Probability with which each tenant's events under keep_severity_at_least are kept now (processors sampling)",
      labelNames: ['tenant'],
      registers: [this.registry],
      collect() {
        for (const [tenant, p] of read.samplingProbabilities?.() ?? []) this.set({ tenant }, p);
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'otlp_edge_aggregator_' });
    this.devices = new Gauge({
      name: 'otlp_edge_aggregator_devices',
      help: 'Devices whose state this node holds',
      registers: [this.registry],
      collect() {
        this.set(read.devices());
      },
    });
    this.devicesOnline = new Gauge({
      name: 'otlp_edge_aggregator_devices_online',
      help: 'Devices heard from within devices.offline_after',
      registers: [this.registry],
      collect() {
        this.set(read.online());
      },
    });
    this.ringVersion = new Gauge({
      name: 'otlp_edge_aggregator_ring_version',
      help: 'Version of the ring this node routes by',
      registers: [this.registry],
      collect() {
        this.set(read.ringVersion());
      },
    });
  }

  /** What event sampling did to one request. */
  countSampled(tenant: string, s: Sampled): void {
    if (s.kept > 0) this.sampledRecords.inc({ tenant, outcome: 'kept' }, s.kept);
    if (s.forced > 0) this.sampledRecords.inc({ tenant, outcome: 'kept_severity' }, s.forced);
    if (s.left > 0) this.sampledRecords.inc({ tenant, outcome: 'sampled_out' }, s.left);
  }

  /** The state store's hooks: reopen failures, points past devices.max_metrics, agents' new buffers (counted). */
  stateHooks(
    log: Logger,
    refusals: RateLimitedLog,
    maxMetrics: number,
  ): Pick<DeviceStateOptions, 'onReopenFailure' | 'onMetricsDropped' | 'onNewBuffer' | 'onTenantRefused'> {
    return {
      onReopenFailure: (err, detail) => {
        this.stateOpenFailures.inc();
        log.error({ err: err.message }, `the state store cannot be reopened after a failed write; retrying: ${detail}`);
      },
      onMetricsDropped: (points, device) => {
        this.metricLimitDropped.inc(points);
        refusals.warn(
          'max_metrics',
          { device, points, maxMetrics },
          'points dropped: the device already has devices.max_metrics distinct metric names',
        );
      },
      onTenantRefused: (reason, tenant, device, points) => {
        this.tenantRefused.inc({ reason, tenant }, points);
        refusals.warn(
          `tenant:${reason}`,
          { device, tenant, reason, points },
          reason === 'other_tenant'
            ? "data not applied: the device belongs to another tenant (a sender's token decides its tenant)"
            : 'data not applied: the tenant holds its quota of devices on this node (processors quotas: devices)',
        );
      },
      onNewBuffer: (agent, was, now) => {
        this.agentBufferRestarts.inc();
        log.warn(
          { agent, was, now },
          'agent sends from a new buffer (its data directory was wiped or replaced): its batch numbering starts again from 1',
        );
      },
    };
  }

  /** The uplink stream service's hooks: its frames, streams and refusals counted here, refusals also logged. */
  streamHooks(refusals: RateLimitedLog): StreamIngestHooks {
    return {
      onFrame: (outcome, _segments, bytes) => {
        this.frames.inc({ outcome });
        this.frameBytes.inc(bytes);
      },
      onStreamError: () => this.streamErrors.inc(),
      onStreams: (d) => this.streams.inc(d),
      onDecoded: (ms) => this.decodeSeconds.inc(ms / 1000),
      onRefused: (reason, agent, detail) => {
        this.streamsRefused.inc({ reason });
        refusals.warn(`stream:${reason}`, { agent, reason }, `uplink stream refused: ${detail}`);
      },
    };
  }
}
