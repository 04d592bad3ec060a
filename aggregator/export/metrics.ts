import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ExportQueue } from './queue.js';
import type { BreakerState } from './breaker.js';

const BREAKER: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

/** The exporters' metrics on the node's registry, labelled by exporter name. */
export class ExportMetrics {
  readonly sentPoints: Counter<'exporter'>;
  readonly requests: Counter<'exporter' | 'outcome'>;
  readonly dropped: Counter<'exporter' | 'reason'>;
  readonly sendSeconds: Histogram<'exporter'>;
  private readonly breakerState: Gauge<'exporter'>;
  private readonly queues: ExportQueue[] = [];
  private readonly breakers = new Map<string, () => BreakerState>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.sentPoints = new Counter({
      name: 'otlp_edge_aggregator_export_sent_points_total',
      help: 'Points (data points, log records, spans) the backend took',
      labelNames: ['exporter'] as const,
      registers,
    });
    this.requests = new Counter({
      name: 'otlp_edge_aggregator_export_requests_total',
      help: 'Export requests by outcome (ok, retry, rejected, too_large)',
      labelNames: ['exporter', 'outcome'] as const,
      registers,
    });
    this.dropped = new Counter({
      name: 'otlp_edge_aggregator_export_dropped_points_total',
      help: 'Points that will never reach the backend, by reason: queue_full (oldest dropped past queue.max_bytes) and rejected (refused for good) count since the queue was created, kept across restarts; refused (the backend kept part of a request) and unsupported (no form in the protocol) since start',
      labelNames: ['exporter', 'reason'] as const,
      registers,
    });
    this.sendSeconds = new Histogram({
      name: 'otlp_edge_aggregator_export_request_duration_seconds',
      help: 'Time an export request took, any outcome',
      labelNames: ['exporter'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.breakerState = new Gauge({
      name: 'otlp_edge_aggregator_export_breaker_state',
      help: "The exporter's circuit breaker: 0 closed, 1 half-open (probing), 2 open (not sending)",
      labelNames: ['exporter'] as const,
      registers,
      collect: () => {
        for (const [name, state] of this.breakers) this.breakerState.set({ exporter: name }, BREAKER[state()]);
      },
    });
    const queues = this.queues;
    const gauge = (name: string, help: string, read: (q: ExportQueue) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['exporter'] as const,
        registers,
        collect() {
          for (const q of queues) this.set({ exporter: q.name }, read(q));
        },
      });
    gauge('otlp_edge_aggregator_export_queue_bytes', 'Bytes in the durable export queue', (q) => q.bytes);
    gauge('otlp_edge_aggregator_export_queue_points', 'Points in the durable export queue', (q) => q.points);
    gauge('otlp_edge_aggregator_export_queue_batches', 'Requests in the durable export queue', (q) => q.length);
    gauge(
      'otlp_edge_aggregator_export_queue_oldest_age_seconds',
      'Age of the oldest queued request (0 = empty)',
      (q) => {
        const at = q.oldestAt();
        return at === 0 ? 0 : Math.max(0, (Date.now() - at) / 1000);
      },
    );
  }

  /** Exposes a queue (its persistent drop counts start the counter) and its breaker. */
  add(q: ExportQueue, breaker: () => BreakerState): void {
    this.queues.push(q);
    this.breakers.set(q.name, breaker);
    for (const reason of ['queue_full', 'rejected'] as const)
      this.dropped.inc({ exporter: q.name, reason }, q.dropped[reason].points);
  }
}
