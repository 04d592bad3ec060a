import { createMemoryLimiter, type MemoryLimiter } from '../runtime/processors/memory-limiter.js';
import { RecordProcessors } from '../runtime/processors/chain.js';
import type { Logger } from 'pino';
import { MetricsEncoder } from '../protocol/otlp/metrics-encoder.js';
import { LogsEncoder } from '../protocol/otlp/logs-encoder.js';
import { ZstdCompressor } from '../protocol/compression.js';
import { TopicMatcher } from '../protocol/topics.js';
import { Batcher } from './buffer/batcher.js';
import { CircularBuffer } from './buffer/circular-buffer.js';
import { bufferDir, gatewayId, type AgentConfig } from './config.js';
import { AgentMetrics } from './ops/metrics.js';
import { OpsServer } from '../runtime/ops/ops-server.js';
import { IngestPipeline, type RejectionReport } from './pipeline/ingest.js';
import type { SparkplugIngest } from './pipeline/sparkplug.js';
import { sparkplugIngest } from './pipeline/sparkplug-setup.js';
import type { InboundMessage, Settled } from './receiver/message.js';
import type { DeviceAuthorizer } from './receiver/auth.js';
import type { EmbeddedBroker } from './receiver/broker.js';
import { startEmbeddedBroker } from './receiver/broker-setup.js';
import type { BrokerClientReceiver } from './receiver/client.js';
import { RateLimitedLog } from '../runtime/log/rate-limited-log.js';
import { openWithRetry } from '../runtime/storage/open-with-retry.js';
import type { UplinkSender } from './uplink/sender.js';
import { createUplink } from './uplink/create.js';
import { BacklogPacker } from './buffer/packer.js';
import type { AgentRing } from './uplink/ring.js';

/** How often the agent checks whether deleted batches are worth a LevelDB compaction. */
const COMPACT_CHECK_MS = 60_000;

/**
 * The gateway process: receivers (embedded broker, broker client) → ingest pipeline → group commit → LevelDB buffer.
 * The constructor only wires; start() opens storage first and intake last; stop() runs the reverse: stop intake,
 * flush what was accepted, disconnect, close storage.
 */
export class Agent {
  readonly metrics: AgentMetrics;
  readonly id: string;
  private buffer: CircularBuffer | null = null;
  private batcher: Batcher | null = null;
  private pipeline: IngestPipeline | null = null;
  private sparkplug: SparkplugIngest | null = null;
  private broker: EmbeddedBroker | null = null;
  private client: BrokerClientReceiver | null = null;
  private auth: DeviceAuthorizer | null = null;
  private uplink: UplinkSender | null = null;
  private packer: BacklogPacker | null = null;
  private ring: AgentRing | null = null;
  private ops: OpsServer;
  private readonly limiter: MemoryLimiter | null;
  private compactTimer: NodeJS.Timeout | null = null;
  private readonly rejectLog: RateLimitedLog;
  private stopping: Promise<void> | null = null;
  /** start() has finished: every listener is open. */
  private started = false;
  /** Why the buffer could not be opened yet, while retrying. */
  private openFailure: string | null = null;
  /** The last commit's error, until a commit succeeds (reported by /readyz). */
  private commitFailure: string | null = null;

  constructor(
    readonly cfg: AgentConfig,
    private readonly log: Logger,
    /** Resident memory as the memory limiter reads it (tests give their own). */
    rss: () => number = () => process.memoryUsage.rss(),
  ) {
    this.id = gatewayId(cfg);
    this.metrics = new AgentMetrics(() => this.buffer?.stats() ?? null);
    this.limiter = createMemoryLimiter(
      cfg.processors,
      this.metrics.memoryGauges,
      log,
      'QoS 0 messages dropped, QoS 1 and 2 held unacknowledged, new logins refused',
      rss,
    );
    this.rejectLog = new RateLimitedLog(log);
    this.ops = new OpsServer({
      host: cfg.http.host,
      port: cfg.http.port,
      registry: this.metrics.registry,
      notReady: () => this.notReady(),
    });
  }

  /** Listening ports (0 where off), for people and tests. */
  get ports(): { mqtt: number; mqtts: number; ws: number; http: number } {
    const p = this.broker?.ports ?? {};
    return { mqtt: p.tcp ?? 0, mqtts: p.tls ?? 0, ws: p.ws ?? 0, http: this.ops.port };
  }

  get bufferStats() {
    return this.buffer?.stats() ?? null;
  }

  async start(): Promise<void> {
    const cfg = this.cfg;
    // Ops first: while the buffer cannot be opened (a full disk), /metrics and /readyz say why.
    await this.ops.start();
    this.limiter?.start();
    this.buffer = await openWithRetry(
      bufferDir(cfg),
      () => CircularBuffer.open({ dir: bufferDir(cfg), maxBytes: cfg.buffer.max_bytes }),
      {
        stopped: () => this.stopping !== null,
        onFailure: (err, detail, retryInMs) => {
          this.openFailure = detail;
          this.metrics.bufferOpenFailures.inc();
          this.log.error({ err: err.message, retryInMs }, `the buffer cannot be opened; retrying: ${detail}`);
        },
      },
    );
    this.openFailure = null;
    const up = createUplink(cfg, this.id, this.buffer, this.metrics, this.log);
    this.uplink = up?.sender ?? null;
    this.ring = up?.ring ?? null;
    const uplink = this.uplink;
    if (uplink)
      this.buffer.attachUplink({ sending: (seq) => uplink.isSending(seq), dropping: (seqs) => uplink.forget(seqs) });
    const m = this.metrics;
    const processors = RecordProcessors.build(cfg.processors, 'processors', {
      applied: m.processorApplied,
      redacted: m.processorRedacted,
    });
    const encoderOptions = {
      gatewayId: this.id,
      attributes: cfg.agent.attributes,
      serviceName: cfg.agent.service_name,
      counters: [...cfg.agent.counters],
      resource: processors?.changesResources
        ? (id: string, base: readonly string[]) => processors.resource(id, [...base])
        : undefined,
    };
    this.batcher = new Batcher(
      {
        maxDelayMs: cfg.batch.max_delay,
        maxPoints: cfg.batch.max_points,
        routeOf: this.ring ? (id) => this.ring!.routeOf(id) : undefined,
      },
      new MetricsEncoder(encoderOptions),
      new LogsEncoder(encoderOptions),
      new ZstdCompressor(cfg.buffer.zstd_level),
      this.buffer,
      {
        onCommit: (c) => {
          this.commitFailure = null;
          m.batchesStored.inc(c.batches);
          m.pointsStored.inc(c.points);
          m.bytesStored.inc(c.bytes);
          m.commitLatency.observe(c.durationMs / 1000);
          this.uplink?.notify();
          if (c.droppedBatches > 0)
            this.rejectLog.warn(
              'buffer_full',
              { droppedBatches: c.droppedBatches, droppedPoints: c.droppedPoints },
              'buffer cap reached: oldest batches dropped',
            );
        },
        onCommitError: (err, points) => {
          this.commitFailure = err.message;
          m.commitErrors.inc();
          this.rejectLog.warn(
            'commit_failed',
            { err: err.message, points },
            'batch commit failed; QoS 1 messages in it were not acknowledged',
          );
        },
      },
    );
    const topics = new TopicMatcher(cfg.mqtt.topics);
    this.sparkplug = await sparkplugIngest(
      cfg,
      this.buffer.side,
      this.batcher,
      (topic, payload) => {
        this.broker?.publish(topic, payload);
        this.client?.publish(topic, payload);
      },
      m,
      this.log,
      this.rejectLog,
    );
    this.pipeline = new IngestPipeline(
      topics,
      this.batcher,
      {
        onAccepted: (kind, qos, n) => m.accepted(kind, qos, n),
        onRejected: (r) => this.rejected(r, topics),
        onDropped: (reason, n) => m.messagesDropped.inc({ reason }, n),
        onHeld: (delta) => {
          m.memoryHeld.inc(delta);
          if (delta > 0) m.memoryHeldTotal.inc(delta);
        },
      },
      Date.now,
      processors,
      this.limiter,
      this.sparkplug,
    );
    const sink = (msg: InboundMessage, done: Settled) => this.pipeline!.handle(msg, done);

    this.uplink?.start();
    this.packer = new BacklogPacker(
      this.buffer,
      this.uplink,
      { afterMs: cfg.buffer.pack_after, zstdLevel: cfg.buffer.zstd_level },
      this.log,
      {
        onPacked: (batches, points, before, after) => {
          m.batchesPacked.inc(batches);
          m.packedBytesSaved.inc(before - after);
          this.log.debug({ batches, points, before, after }, 'undelivered batches packed');
        },
      },
    );
    this.packer.start();
    const b = cfg.mqtt.broker;
    if (b.enabled) {
      if (b.allow_anonymous)
        this.log.warn(
          'mqtt.broker.allow_anonymous is true: any device can connect and publish without credentials (development only)',
        );
      const started = await startEmbeddedBroker(cfg, topics, sink, this.limiter, m, this.log, this.rejectLog, (d, r) =>
        this.reportToDevice(d, topics, r),
      );
      this.auth = started.auth;
      this.broker = started.broker;
      this.log.info({ ports: this.broker.ports }, 'embedded MQTT broker listening');
    }
    const c = cfg.mqtt.client;
    if (c.enabled) {
      // Loaded only in this mode: MQTT.js costs about 20 MB of resident memory at load.
      const { BrokerClientReceiver } = await import('./receiver/client.js');
      this.client = new BrokerClientReceiver(
        {
          url: c.url,
          username: c.username,
          password: c.password,
          ca: c.ca,
          sharedGroup: c.shared_group,
          clientId: c.client_id || `otlp-edge-agent-${this.id}`,
          protocolVersion: c.protocol_version === '4' ? 4 : 5,
          filters: [
            topics.subscriptionFor('telemetry'),
            topics.subscriptionFor('events'),
            ...(cfg.mqtt.sparkplug.enabled ? [`${cfg.mqtt.sparkplug.topic_root}/#`] : []),
          ],
        },
        sink,
        this.log,
      );
      this.client.start();
    }
    this.compactTimer = setInterval(() => this.maybeCompact(), COMPACT_CHECK_MS).unref();
    this.started = true;
    this.log.info({ id: this.id, dataDir: cfg.agent.data_dir, http: this.ops.port }, 'agent started');
  }

  /** Re-reads the device credentials file (SIGHUP) and disconnects devices whose password it no longer holds. */
  async reload(): Promise<void> {
    await this.auth?.reload();
    this.log.info('credentials reloaded');
    const n = this.broker?.disconnectRevoked() ?? 0;
    if (n > 0) {
      this.metrics.revokedDisconnects.inc(n);
      this.log.info(
        { devices: n },
        'credentials reloaded: devices whose password was removed or replaced were disconnected',
      );
    }
  }

  private notReady(): string | null {
    if (this.stopping) return 'shutting down';
    if (this.buffer === null) return `buffer not open${this.openFailure ? `: ${this.openFailure}` : ''}`;
    if (!this.started) return 'starting (listeners not open yet)';
    if (this.commitFailure !== null)
      return `the last commit failed (${this.commitFailure}); QoS 1 messages are not acknowledged until one succeeds`;
    if (this.cfg.mqtt.client.enabled && !this.client?.connected) return `not connected to ${this.cfg.mqtt.client.url}`;
    return null;
  }

  private rejected(r: RejectionReport, topics: TopicMatcher): void {
    this.metrics.rejected.inc({ reason: r.reason });
    this.rejectLog.warn(`reject:${r.reason}`, { device: r.deviceId, topic: r.topic, code: r.code }, r.message);
    if (r.deviceId === '') return;
    this.reportToDevice(r.deviceId, topics, r);
  }

  /** Tells a device why its message was refused, on its own errors topic (QoS 0, not retained). */
  private reportToDevice(
    deviceId: string,
    topics: TopicMatcher,
    r: { code: string; reason: string; message: string; topic: string },
  ): void {
    const body = JSON.stringify({
      code: r.code,
      reason: r.reason,
      message: r.message,
      topic: r.topic,
      ts: new Date().toISOString(),
    });
    const topic = topics.topicFor('errors', deviceId);
    this.broker?.publish(topic, body);
    this.client?.publish(topic, body);
  }

  private maybeCompact(): void {
    const buf = this.buffer;
    if (buf && buf.reclaimable > this.cfg.buffer.max_bytes / 4) {
      buf.compact().catch((err: Error) => this.log.warn({ err: err.message }, 'buffer compaction failed'));
    }
  }

  /** Idempotent. Stops intake, commits what was accepted, disconnects devices, closes storage. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    if (this.compactTimer) clearInterval(this.compactTimer);
    this.pipeline?.close();
    this.broker?.stopAccepting();
    this.limiter?.stop(); // what it held is let go: the closed pipeline leaves it unacknowledged
    await this.batcher?.flush();
    this.batcher?.stop();
    await this.sparkplug?.close();
    await this.packer?.stop();
    await this.uplink?.stop();
    await this.broker?.stop();
    await this.client?.stop();
    await this.ops.stop();
    await this.buffer?.close();
    this.log.info('agent stopped');
  }
}
