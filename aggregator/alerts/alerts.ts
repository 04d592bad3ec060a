import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { Device } from '../device/device-record.js';
import type { AggregatorConfig } from '../config.js';
import type { Alert, AlertChange } from './alert.js';
import { AlertEngine } from './engine.js';
import { AlertMetrics } from './metrics.js';
import { AlertmanagerReceiver, WebhookReceiver } from './notify.js';

/** Alert changes logged one by one per evaluation; the rest are summed up in one line. */
const LOGGED_PER_PASS = 20;

export interface AlertsDeps {
  nodeId: string;
  offlineAfterMs: number;
  /** Whether this node owns a device now. */
  owns: (deviceId: string) => boolean;
  /** Every device this node holds (null while its state store is not open). */
  devices: () => Iterable<Device> | null;
  /** The page's address, for Alertmanager's generatorURL ('' = none). */
  pageUrl: string;
  registry: Registry;
  log: Logger;
  /** Alert changes for the live stream. */
  onChanges?: (changes: AlertChange[]) => void;
}

/**
 * A node's alerting: the engine evaluated every alerts.evaluation_interval over the devices the node owns, and the
 * changes delivered to Alertmanager (with the firing alerts sent again every resend_interval) and to webhooks.
 */
export class Alerts {
  private readonly engine: AlertEngine;
  private readonly alertmanager: AlertmanagerReceiver | null;
  private readonly webhooks: WebhookReceiver[];
  private readonly metrics: AlertMetrics;
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly cfg: AggregatorConfig['alerts'],
    private readonly deps: AlertsDeps,
  ) {
    this.metrics = new AlertMetrics(deps.registry, {
      active: () => {
        const firing = this.engine.firingCount;
        return { firing, pending: this.engine.list().length - firing };
      },
      backlog: () => [this.alertmanager, ...this.webhooks].reduce((n, r) => n + (r?.backlog ?? 0), 0),
    });
    this.engine = new AlertEngine(cfg, {
      offlineAfterMs: deps.offlineAfterMs,
      owns: deps.owns,
      onChanges: (changes) => this.changed(changes),
      onOverflow: (alertname) => this.metrics.overflow.inc({ alertname }),
    });
    this.alertmanager = cfg.alertmanager.url
      ? new AlertmanagerReceiver(cfg, deps.pageUrl, this.metrics, deps.log)
      : null;
    this.webhooks = cfg.webhooks.map((w, i) => new WebhookReceiver(i, w, deps.nodeId, this.metrics, deps.log));
  }

  start(): void {
    this.timers.push(setInterval(() => this.evaluate(), this.cfg.evaluation_interval).unref());
    if (this.alertmanager)
      this.timers.push(
        setInterval(() => {
          const firing = this.engine.list().filter((a) => a.state === 'firing');
          if (firing.length > 0) this.alertmanager?.send(firing, Date.now());
        }, this.cfg.resend_interval).unref(),
      );
  }

  /** One evaluation now (the timer's work; tests and the sweep call it too). */
  evaluate(now = Date.now()): void {
    const devices = this.deps.devices();
    if (devices === null) return;
    const t0 = performance.now();
    this.engine.evaluate(devices, now);
    this.metrics.evaluationSeconds.inc((performance.now() - t0) / 1000);
  }

  /** Alerts active on this node (pending and firing). */
  list(): Alert[] {
    return this.engine.list();
  }

  get firingCount(): number {
    return this.engine.firingCount;
  }

  private changed(changes: AlertChange[]): void {
    const summary = new Map<string, number>();
    changes.forEach((c, i) => {
      const a = c.alert;
      this.metrics.changes.inc({ alertname: a.alertname, status: c.status });
      // A line per change while they are few; past LOGGED_PER_PASS one line sums them up (a gateway outage takes
      // thousands of devices offline at once).
      if (i < LOGGED_PER_PASS)
        this.deps.log[c.status === 'firing' ? 'warn' : 'info'](
          { alert: a.alertname, device: a.device, severity: a.severity, value: a.value, status: c.status },
          c.status === 'firing' ? 'alert firing' : 'alert resolved',
        );
      else summary.set(`${a.alertname} ${c.status}`, (summary.get(`${a.alertname} ${c.status}`) ?? 0) + 1);
    });
    if (summary.size > 0)
      this.deps.log.warn(
        { changes: Object.fromEntries(summary) },
        `${changes.length - LOGGED_PER_PASS} more alert changes in this evaluation (GET /v1/alerts lists them)`,
      );
    this.alertmanager?.send(
      changes.map((c) => c.alert),
      Date.now(),
    );
    for (const w of this.webhooks) w.send(changes);
    this.deps.onChanges?.(changes);
  }

  /** Stops evaluating, gives waiting notifications a last chance, and closes the receivers' connections. */
  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    const receivers = [...(this.alertmanager ? [this.alertmanager] : []), ...this.webhooks];
    await Promise.all(receivers.map((r) => r.flush()));
    for (const r of receivers) r.stop();
  }
}
