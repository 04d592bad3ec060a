import type { MemoryLimiterGauges } from '../../runtime/processors/memory-limiter.js';
import { talliedCounter } from '../../runtime/ops/tallied-counter.js';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BufferStats } from '../buffer/buffer-types.js';

/**
 * How often the event-loop delay histogram samples, ms. Each sample is a timer that wakes the process: prom-client's
 * 10 ms made 100 wake-ups a second, 0.9–1.1 % of a core for an idle agent; 20 ms gives 0.75 %. Each sample's delay
 * is still measured exactly, the p99 over half as many samples (a long turn is caught by the sample due in it).
 */
const LOOP_DELAY_SAMPLE_MS = 20;

/**
 * Everything the agent exposes on /metrics. One registry per agent instance (not prom-client's global one), so
 * several agents can live in one test process. Counters that must survive restarts (dropped batches and points) are
 * read from the buffer's persisted state at scrape time rather than counted in memory.
 */
export class AgentMetrics {
  readonly registry = new Registry();

  /**
   * Per-message counts by QoS (0, 1, 2), tallied in plain numbers and added to their counters when scraped: a
   * labelled inc() hashes its labels on every call, which cost 3 % of the agent's CPU at 40k messages/s.
   */
  private readonly tally = { messages: [0, 0, 0], telemetry: [0, 0, 0], events: [0, 0, 0] };

  readonly readingsReceived = qosCounter(
    this.registry,
    'otlp_edge_agent_readings_received_total',
    'Readings accepted from devices, by MQTT QoS',
    this.tally.telemetry,
  );
  readonly eventsReceived = qosCounter(
    this.registry,
    'otlp_edge_agent_events_received_total',
    'Events accepted from devices, by MQTT QoS',
    this.tally.events,
  );
  readonly messagesReceived = qosCounter(
    this.registry,
    'otlp_edge_agent_messages_received_total',
    'MQTT messages received on device topics, by QoS',
    this.tally.messages,
  );
  readonly rejected = new Counter({
    name: 'otlp_edge_agent_messages_rejected_total',
    help: 'Device messages rejected as a whole, by reason (bad_json, too_large, …)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly refusals = new Counter({
    name: 'otlp_edge_agent_auth_refusals_total',
    help: 'Connections, publishes and subscriptions refused, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly connectionsRefused = new Counter({
    name: 'otlp_edge_agent_connections_refused_total',
    help: 'Device connections closed by the broker, by reason (max_connections, packet_too_large, protocol_error, keepalive_timeout, connect_timeout, slow_reader, early_packets, memory_limit)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly sparkplugMessages = new Counter({
    name: 'otlp_edge_agent_sparkplug_messages_total',
    help: 'Sparkplug B messages received, by type (NBIRTH, NDATA, NDEATH, DBIRTH, DDATA, DDEATH)',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly sparkplugRefused = new Counter({
    name: 'otlp_edge_agent_sparkplug_refused_total',
    help: 'Sparkplug B messages not taken, by reason (bad_topic, bad_payload, bad_device_id, data_before_birth, unknown_alias, stale_death, too_many)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly sparkplugSkipped = new Counter({
    name: 'otlp_edge_agent_sparkplug_metrics_skipped_total',
    help: 'Sparkplug B metrics left out of readings, by reason (null, transient, unsupported_type, bad_name, bad_string)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly sparkplugLost = new Counter({
    name: 'otlp_edge_agent_sparkplug_lost_messages_total',
    help: 'Sparkplug B messages an edge node sent that never arrived (seqs skipped past the reorder timeout)',
    registers: [this.registry],
  });
  readonly sparkplugRebirths = new Counter({
    name: 'otlp_edge_agent_sparkplug_rebirth_requests_total',
    help: 'NCMD Node Control/Rebirth commands published to edge nodes',
    registers: [this.registry],
  });
  readonly retainCleared = new Counter({
    name: 'otlp_edge_agent_retain_cleared_total',
    help: 'Publishes sent with the retain flag: taken as data, never stored as retained messages',
    registers: [this.registry],
  });
  readonly revokedDisconnects = new Counter({
    name: 'otlp_edge_agent_revoked_disconnects_total',
    help: 'Devices disconnected because a credentials reload removed or replaced their password',
    registers: [this.registry],
  });
  readonly bufferOpenFailures = new Counter({
    name: 'otlp_edge_agent_buffer_open_failures_total',
    help: 'Attempts to open the buffer that failed (e.g. a full disk); the agent keeps trying',
    registers: [this.registry],
  });
  readonly batchesStored = new Counter({
    name: 'otlp_edge_agent_batches_stored_total',
    help: 'Batches committed to the buffer',
    registers: [this.registry],
  });
  readonly pointsStored = new Counter({
    name: 'otlp_edge_agent_points_stored_total',
    help: 'Data points and log records committed to the buffer',
    registers: [this.registry],
  });
  readonly bytesStored = new Counter({
    name: 'otlp_edge_agent_bytes_stored_total',
    help: 'Compressed bytes committed to the buffer',
    registers: [this.registry],
  });
  readonly commitErrors = new Counter({
    name: 'otlp_edge_agent_commit_errors_total',
    help: 'Batch commits that failed (e.g. disk full); their QoS 1 messages were not acknowledged',
    registers: [this.registry],
  });
  readonly messagesDropped = new Counter({
    name: 'otlp_edge_agent_messages_dropped_total',
    help: 'QoS 0 messages dropped before decoding, by reason (overload: commits fell behind; memory_limit; shutdown)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  /** An incrementer per (processor, action): counted in a plain number, added at each scrape. */
  readonly processorApplied = talliedCounter(
    this.registry,
    'otlp_edge_agent_processor_attributes_applied_total',
    'Attributes actions that changed a record or Resource, by processor (its place in processors:) and action',
    'processor',
    'action',
  );
  readonly processorRedacted = talliedCounter(
    this.registry,
    'otlp_edge_agent_processor_redactions_total',
    'Pieces of text redacted, by processor (its place in processors:) and detector (key: a blocked key)',
    'processor',
    'detector',
  );
  readonly memoryState = new Gauge({
    name: 'otlp_edge_agent_memory_limiter_state',
    help: 'Memory limiter: 0 under the soft limit, 1 over it (new input refused), 2 over the hard limit',
    registers: [this.registry],
  });
  readonly memoryLimit = new Gauge({
    name: 'otlp_edge_agent_memory_limiter_limit_bytes',
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
  readonly memoryHeld = new Gauge({
    name: 'otlp_edge_agent_memory_limiter_held_messages',
    help: 'QoS 1 and 2 messages waiting, unacknowledged, for memory to be back under the soft limit',
    registers: [this.registry],
  });
  readonly memoryHeldTotal = new Counter({
    name: 'otlp_edge_agent_memory_limiter_held_total',
    help: 'QoS 1 and 2 messages held unacknowledged because memory was over the soft limit',
    registers: [this.registry],
  });
  readonly commitLatency = new Histogram({
    name: 'otlp_edge_agent_commit_duration_seconds',
    help: 'Time to encode, compress and durably write one group commit',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly batchesPacked = new Counter({
    name: 'otlp_edge_agent_buffer_packed_batches_total',
    help: 'Undelivered stored batches packed into compact records (buffer.pack_after)',
    registers: [this.registry],
  });
  readonly packedBytesSaved = new Counter({
    name: 'otlp_edge_agent_buffer_packed_bytes_saved_total',
    help: 'Stored bytes freed by packing undelivered batches',
    registers: [this.registry],
  });
  readonly uplinkRequests = new Counter({
    name: 'otlp_edge_agent_uplink_requests_total',
    help: 'Uplink requests (stream frames or calls, each carrying stored batches) by outcome (sent, ok, retry, rejected, split, failed)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly uplinkBatchesPerRequest = new Histogram({
    name: 'otlp_edge_agent_uplink_request_batches',
    help: 'Stored batches per uplink request',
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 4096],
    registers: [this.registry],
  });
  readonly uplinkStreamRefusals = new Counter({
    name: 'otlp_edge_agent_uplink_stream_refusals_total',
    help: 'Aggregators that refused an uplink stream (older, or another frame format): batches went one per call',
    registers: [this.registry],
  });
  readonly uplinkBatches = new Counter({
    name: 'otlp_edge_agent_uplink_batches_total',
    help: 'Stored batches in uplink requests by outcome (sent, ok, retry, rejected, split, failed)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly uplinkPoints = new Counter({
    name: 'otlp_edge_agent_uplink_points_total',
    help: 'Points in uplink batches by outcome (sent, ok, rejected)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly uplinkBytes = new Counter({
    name: 'otlp_edge_agent_uplink_bytes_total',
    help: 'Bytes on the wire (frame or request payloads) by outcome (sent, ok)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly uplinkLatency = new Histogram({
    name: 'otlp_edge_agent_uplink_duration_seconds',
    help: "Time from sending a request to the receiver's answer",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly connectedDevices = new Gauge({
    name: 'otlp_edge_agent_connected_devices',
    help: 'Devices connected to the embedded broker',
    registers: [this.registry],
  });

  constructor(bufferStats: () => BufferStats | null) {
    collectDefaultMetrics({
      register: this.registry,
      prefix: 'otlp_edge_agent_',
      eventLoopMonitoringPrecision: LOOP_DELAY_SAMPLE_MS,
    });
    const gauge = (name: string, help: string, read: (s: BufferStats) => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          const s = bufferStats();
          if (s) this.set(read(s));
        },
      });
    gauge('otlp_edge_agent_buffer_bytes', 'Bytes of batches held in the buffer', (s) => s.bytes);
    gauge('otlp_edge_agent_buffer_max_bytes', 'The buffer cap (buffer.max_bytes)', (s) => s.maxBytes);
    gauge('otlp_edge_agent_buffer_batches', 'Batches held in the buffer', (s) => s.batches);
    gauge('otlp_edge_agent_buffer_points', 'Points held in the buffer', (s) => s.points);
    gauge('otlp_edge_agent_uplink_backlog_batches', 'Stored batches not yet delivered', (s) => s.batches);
    gauge('otlp_edge_agent_uplink_backlog_bytes', 'Bytes of stored batches not yet delivered', (s) => s.bytes);
    gauge(
      'otlp_edge_agent_uplink_backlog_oldest_age_seconds',
      'Age of the oldest batch not yet delivered (0 when none)',
      (s) => (s.oldestCreatedMs === null ? 0 : Math.max(0, (Date.now() - s.oldestCreatedMs) / 1000)),
    );
    gauge('otlp_edge_agent_uplink_quarantined_batches', 'Rejected batches kept aside', (s) => s.quarantinedBatches);
    // Persisted across restarts by the buffer itself; exposed as counters so rate() works.
    const counter = (name: string, help: string, read: (s: BufferStats) => number) =>
      new Counter({
        name,
        help,
        registers: [this.registry],
        collect() {
          const s = bufferStats();
          if (s) {
            this.reset();
            this.inc(read(s));
          }
        },
      });
    counter(
      'otlp_edge_agent_buffer_dropped_batches_total',
      'Oldest batches dropped to keep the buffer within its cap (persistent)',
      (s) => s.droppedBatches,
    );
    counter(
      'otlp_edge_agent_buffer_dropped_points_total',
      'Points in batches dropped by the cap (persistent)',
      (s) => s.droppedPoints,
    );
    counter(
      'otlp_edge_agent_uplink_rejected_batches_total',
      'Batches the receiver rejected, moved aside (persistent)',
      (s) => s.rejectedBatches,
    );
    counter(
      'otlp_edge_agent_uplink_rejected_points_total',
      'Points in batches the receiver rejected (persistent)',
      (s) => s.rejectedPoints,
    );
  }

  /** One device message accepted into the pipeline, with its readings or events. */
  accepted(kind: 'telemetry' | 'events', qos: number, count: number): void {
    this.tally.messages[qos]++;
    this.tally[kind][qos] += count;
  }
}

/** A counter by QoS whose increments gather in `tally` (index = QoS) and are added at each scrape. */
function qosCounter(registry: Registry, name: string, help: string, tally: number[]): Counter<'qos'> {
  const counter: Counter<'qos'> = new Counter({
    name,
    help,
    labelNames: ['qos'] as const,
    registers: [registry],
    collect() {
      for (let q = 0; q < tally.length; q++) {
        if (tally[q] === 0) continue;
        counter.inc({ qos: String(q) }, tally[q]);
        tally[q] = 0;
      }
    },
  });
  return counter;
}
