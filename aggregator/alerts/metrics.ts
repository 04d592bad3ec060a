import { Counter, Gauge, type Registry } from 'prom-client';

/** The alerts' metrics on the node's registry. */
export class AlertMetrics {
  readonly changes: Counter<'alertname' | 'status'>;
  readonly notifications: Counter<'receiver' | 'outcome'>;
  readonly sent: Counter<'receiver'>;
  readonly dropped: Counter<'receiver' | 'reason'>;
  readonly overflow: Counter<'alertname'>;
  readonly evaluationSeconds: Counter;

  constructor(registry: Registry, read: { active(): { firing: number; pending: number }; backlog(): number }) {
    const registers = [registry];
    this.changes = new Counter({
      name: 'otlp_edge_aggregator_alert_changes_total',
      help: 'Alerts that began firing or resolved on this node (it evaluates the devices it owns)',
      labelNames: ['alertname', 'status'] as const,
      registers,
    });
    this.notifications = new Counter({
      name: 'otlp_edge_aggregator_alert_notifications_total',
      help: 'Requests to alert receivers (alertmanager, webhook-N) by outcome (ok, retry, rejected)',
      labelNames: ['receiver', 'outcome'] as const,
      registers,
    });
    this.sent = new Counter({
      name: 'otlp_edge_aggregator_alert_notifications_sent_total',
      help: 'Alerts (or alert changes, for webhooks) a receiver took',
      labelNames: ['receiver'] as const,
      registers,
    });
    this.dropped = new Counter({
      name: 'otlp_edge_aggregator_alert_notifications_dropped_total',
      help: 'Alert notifications that will never reach a receiver: queue_full (oldest dropped past 10,000 waiting) or rejected (a 4xx answer)',
      labelNames: ['receiver', 'reason'] as const,
      registers,
    });
    this.overflow = new Counter({
      name: 'otlp_edge_aggregator_alerts_not_raised_total',
      help: 'Alerts not raised because alerts.max_active alerts were active',
      labelNames: ['alertname'] as const,
      registers,
    });
    this.evaluationSeconds = new Counter({
      name: 'otlp_edge_aggregator_alert_evaluation_seconds_total',
      help: 'Time spent evaluating alerts',
      registers,
    });
    new Gauge({
      name: 'otlp_edge_aggregator_alerts_active',
      help: 'Alerts active on this node, by state (pending, firing)',
      labelNames: ['state'] as const,
      registers,
      collect() {
        const a = read.active();
        this.set({ state: 'firing' }, a.firing);
        this.set({ state: 'pending' }, a.pending);
      },
    });
    new Gauge({
      name: 'otlp_edge_aggregator_alert_notifications_waiting',
      help: 'Alert notifications waiting for their receivers',
      registers,
      collect() {
        this.set(read.backlog());
      },
    });
  }
}
