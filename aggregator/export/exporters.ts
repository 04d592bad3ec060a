import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { Signal } from '../../protocol/otlp/signal.js';
import { Compression } from '../../protocol/compression.js';
import { exporterNames, type AggregatorConfig } from '../config.js';
import type { DeviceStateStore } from '../state/store.js';
import type { ExportClient } from './client.js';
import { Exporter } from './exporter.js';
import { ExportMetrics } from './metrics.js';
import { OtlpGrpcClient } from './otlp-grpc.js';
import { OtlpHttpClient } from './otlp-http.js';
import { ExportQueue, ExportQueues } from './queue.js';
import { RemoteWriteClient } from './remote-write.js';
import { RollupExport } from './rollup.js';

/** How often quiet devices' closed minutes are looked for by rollup exporters. */
const ROLLUP_SWEEP_MS = 10_000;

const SIGNALS: Record<string, Signal> = { metrics: Signal.METRICS, logs: Signal.LOGS, traces: Signal.TRACES };

/**
 * The node's exporters (`export`): one durable queue, one client and one sending loop each. The queues exist before
 * the state store opens (the store writes them in its commits and reloads them with its state); the loops start once
 * it is open.
 */
export class Exporters {
  readonly queues: ExportQueues;
  private readonly clients: ExportClient[] = [];
  private readonly exporters: Exporter[] = [];
  private readonly metrics: ExportMetrics;
  private sweep: NodeJS.Timeout | null = null;

  constructor(
    private readonly cfg: AggregatorConfig,
    registry: Registry,
    private readonly log: Logger,
  ) {
    this.metrics = new ExportMetrics(registry);
    const names = exporterNames(cfg);
    const queues: ExportQueue[] = [];
    cfg.export.forEach((e, i) => {
      if (!e.enabled) return;
      const tls = { ca: e.tls.ca, insecure_skip_verify: e.tls.insecure_skip_verify };
      const client: ExportClient =
        e.protocol === 'otlp_grpc'
          ? new OtlpGrpcClient(e.endpoint, e.headers, tls, e.compression === 'gzip' ? 'gzip' : 'none')
          : e.protocol === 'prometheus_remote_write'
            ? new RemoteWriteClient(e.endpoint, e.headers, tls, {
                resourceLabels: e.resource_labels,
                targetInfo: e.target_info,
              })
            : new OtlpHttpClient(e.endpoint, e.headers, tls, e.compression as 'gzip' | 'zstd' | 'none');
      const signals = new Set(e.signals.map((s) => SIGNALS[s]).filter((s) => client.takes(s)));
      this.clients.push(client);
      queues.push(
        new ExportQueue(
          names[i],
          e.mode as 'raw' | 'rollup',
          e.queue.max_bytes,
          e.mode === 'rollup' ? new Set([Signal.METRICS]) : signals,
          (reason, batches, points) => {
            this.metrics.dropped.inc({ exporter: names[i], reason }, points);
            if (reason === 'queue_full')
              log.warn(
                { exporter: names[i], batches, points, maxBytes: e.queue.max_bytes },
                'export queue full: its oldest requests were dropped (counted in otlp_edge_aggregator_export_dropped_points_total)',
              );
          },
        ),
      );
    });
    // Requests are stored in the encoding the (first) OTLP/HTTP exporter sends, so it can send them untouched.
    const http = cfg.export.find((e) => e.enabled && e.protocol === 'otlp_http' && e.compression !== 'none');
    this.queues = new ExportQueues(queues, http?.compression === 'gzip' ? Compression.GZIP : Compression.ZSTD);
    this.rollups = this.queues.rollups ? new RollupExport(this.queues) : undefined;
  }

  /** The rollup exporters' feed, when any exporter has `mode: rollup`. */
  readonly rollups: RollupExport | undefined;

  get size(): number {
    return this.queues.queues.length;
  }

  /** Requests queued in all exporters. */
  get queued(): number {
    return this.queues.queues.reduce((n, q) => n + q.length, 0);
  }

  /** Starts sending (the store is open and the queues loaded), and the rollup exporters' sweep. */
  start(store: DeviceStateStore): void {
    if (this.rollups)
      this.sweep = setInterval(() => {
        store.exports
          .sweepRollups(Date.now())
          .catch((e: Error) => this.log.warn({ err: e.message }, 'rollup export failed'));
      }, ROLLUP_SWEEP_MS).unref();
    const enabled = this.cfg.export.filter((e) => e.enabled);
    this.queues.queues.forEach((q, i) => {
      const e = enabled[i];
      const x = new Exporter(
        q,
        this.clients[i],
        store.exports,
        {
          maxDelayMs: e.batch.max_delay,
          maxPoints: e.batch.max_points,
          timeoutMs: e.timeout,
          maxInFlight: e.max_in_flight || (e.protocol === 'prometheus_remote_write' ? 1 : 4),
        },
        this.metrics,
        this.log,
      );
      this.metrics.add(q, () => x.breaker.state);
      this.exporters.push(x);
      x.start();
      this.log.info(
        {
          exporter: q.name,
          protocol: e.protocol,
          target: this.clients[i].target,
          queued: q.length,
          queuedPoints: q.points,
        },
        'exporter started',
      );
    });
  }

  /** Warns of queues on disk that no configured exporter sends (an exporter renamed or removed). */
  async warnOrphans(store: DeviceStateStore): Promise<void> {
    const names = new Set(this.queues.queues.map((q) => q.name));
    for (const name of await store.exports.storedQueues()) {
      if (names.has(name)) continue;
      this.log.warn(
        { exporter: name },
        `the export queue '${name}' holds requests but no enabled exporter is named '${name}': they stay on disk unsent (name an exporter '${name}' to deliver them)`,
      );
    }
  }

  async stop(): Promise<void> {
    if (this.sweep) clearInterval(this.sweep);
    await Promise.all(this.exporters.map((x) => x.stop()));
    if (this.exporters.length === 0) await Promise.all(this.clients.map((c) => c.close()));
  }
}
