import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { Backoff } from '../../runtime/retry/backoff.js';
import { parseRetryAfter } from '../../runtime/retry/retry-after.js';
import { HttpPoster } from '../../runtime/http/poster.js';
import type { AggregatorConfig } from '../config.js';
import { alertJson, type Alert, type AlertChange } from './alert.js';
import type { AlertMetrics } from './metrics.js';

/** Changes waiting for one receiver past which the oldest are dropped (and counted). */
const MAX_WAITING = 10_000;
/** Alerts per request. */
const MAX_PER_REQUEST = 500;

type WebhookEvent = 'device_offline' | 'device_online' | 'missing' | 'rule';

/** The webhook event a change is: an offline alert firing or resolving is device_offline / device_online. */
export function eventOf(c: AlertChange): WebhookEvent {
  if (c.alert.kind === 'offline') return c.status === 'firing' ? 'device_offline' : 'device_online';
  return c.alert.kind;
}

/**
 * One alert receiver: a queue of what it has not taken yet, sent one request at a time, again with backoff while
 * it fails (a network error, 5xx, 429, 408), dropped and counted when it refuses for good (another 4xx).
 */
abstract class Receiver<Item> {
  protected waiting: Item[] = [];
  private sending = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly backoff = new Backoff(1000, 60_000);
  private stopped = false;
  protected readonly poster: HttpPoster;

  constructor(
    readonly name: string,
    url: URL,
    private readonly path: string,
    private readonly headers: Record<string, string>,
    private readonly timeoutMs: number,
    protected readonly metrics: AlertMetrics,
    private readonly log: Logger,
  ) {
    this.poster = new HttpPoster(url, { ca: '', insecure_skip_verify: false });
  }

  protected abstract body(items: Item[]): { body: Buffer; headers: Record<string, string> };

  /** Items to send; the oldest are dropped past MAX_WAITING. */
  protected enqueue(items: Item[]): void {
    this.waiting.push(...items);
    const excess = this.waiting.length - MAX_WAITING;
    if (excess > 0) {
      this.waiting.splice(0, excess);
      this.metrics.dropped.inc({ receiver: this.name, reason: 'queue_full' }, excess);
    }
    this.kick();
  }

  private kick(): void {
    if (this.sending || this.timer !== null || this.stopped || this.waiting.length === 0) return;
    this.sending = true;
    void this.sendOnce().finally(() => {
      this.sending = false;
    });
  }

  private async sendOnce(): Promise<void> {
    const items = this.waiting.splice(0, MAX_PER_REQUEST);
    const { body, headers } = this.body(items);
    let outcome: 'ok' | 'retry' | 'rejected';
    let reason = '';
    let waitMs: number | null = null;
    try {
      const a = await this.poster.post(
        this.path,
        body,
        { 'content-type': 'application/json', ...this.headers, ...headers },
        this.timeoutMs,
      );
      if (a.status >= 200 && a.status < 300) outcome = 'ok';
      else {
        reason = `HTTP ${a.status}: ${a.body.toString('utf8', 0, 300)}`;
        outcome = a.status >= 500 || a.status === 429 || a.status === 408 ? 'retry' : 'rejected';
        waitMs = parseRetryAfter(a.headers['retry-after']);
      }
    } catch (e) {
      outcome = 'retry';
      reason = (e as Error).message;
    }
    this.metrics.notifications.inc({ receiver: this.name, outcome });
    if (outcome === 'ok') {
      this.backoff.reset();
      this.metrics.sent.inc({ receiver: this.name }, items.length);
    } else if (outcome === 'rejected') {
      this.metrics.dropped.inc({ receiver: this.name, reason: 'rejected' }, items.length);
      this.log.error(
        { receiver: this.name, alerts: items.length, reason },
        'alert receiver refused the alerts; they are dropped (check its URL and credentials)',
      );
    } else {
      this.requeue(items);
      const wait = Math.max(waitMs ?? 0, this.backoff.next());
      this.log.warn({ receiver: this.name, reason, retryInMs: wait }, 'alerts could not be delivered; retrying');
      if (!this.stopped)
        this.timer = setTimeout(() => {
          this.timer = null;
          this.kick();
        }, wait).unref();
      return;
    }
    setImmediate(() => this.kick());
  }

  /** Items that failed go back in front of what came meanwhile. */
  protected requeue(items: Item[]): void {
    this.waiting = [...items, ...this.waiting];
    const excess = this.waiting.length - MAX_WAITING;
    if (excess > 0) {
      this.waiting.splice(0, excess);
      this.metrics.dropped.inc({ receiver: this.name, reason: 'queue_full' }, excess);
    }
  }

  /** Sends what is waiting now (a last try at shutdown), within the receiver's timeout. */
  async flush(): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    while ((this.waiting.length > 0 || this.sending) && Date.now() < deadline) {
      if (this.timer !== null) break; // failing: do not hold shutdown up
      this.kick();
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.poster.close();
  }

  get backlog(): number {
    return this.waiting.length;
  }
}

/** An alert in Alertmanager's API v2 form (postableAlert). */
interface AmAlert {
  key: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL?: string;
}

/**
 * Prometheus Alertmanager, API v2 (`POST /api/v2/alerts`). Alertmanager resolves a firing alert whose endsAt passes
 * without it being sent again, so firing alerts carry endsAt = now + 4 × resend_interval and are sent again every
 * resend_interval (as Prometheus does). Waiting alerts are kept by identity: a newer state replaces an older one.
 */
export class AlertmanagerReceiver extends Receiver<AmAlert> {
  constructor(
    private readonly cfg: AggregatorConfig['alerts'],
    private readonly pageUrl: string,
    metrics: AlertMetrics,
    log: Logger,
  ) {
    const url = new URL(cfg.alertmanager.url);
    const path = `${url.pathname.replace(/\/+$/, '')}/api/v2/alerts`;
    super('alertmanager', url, path, cfg.alertmanager.headers, cfg.alertmanager.timeout, metrics, log);
  }

  send(alerts: Alert[], now: number): void {
    const items = alerts.map((a) => this.item(a, now));
    const keys = new Set(items.map((i) => i.key));
    this.waiting = this.waiting.filter((w) => !keys.has(w.key));
    this.enqueue(items);
  }

  protected override requeue(items: AmAlert[]): void {
    const newer = new Set(this.waiting.map((w) => w.key));
    super.requeue(items.filter((i) => !newer.has(i.key)));
  }

  private item(a: Alert, now: number): AmAlert {
    const endsAt = a.state === 'resolved' && a.endsAt !== null ? a.endsAt : now + 4 * this.cfg.resend_interval;
    return {
      key: `${a.alertname}\u0000${a.device}`,
      labels: a.labels,
      annotations: a.annotations,
      startsAt: new Date(a.startsAt).toISOString(),
      endsAt: new Date(endsAt).toISOString(),
      generatorURL: this.pageUrl ? `${this.pageUrl}#/devices/${encodeURIComponent(a.device)}` : undefined,
    };
  }

  protected body(items: AmAlert[]): { body: Buffer; headers: Record<string, string> } {
    return { body: Buffer.from(JSON.stringify(items.map(({ key: _key, ...rest }) => rest))), headers: {} };
  }
}

/** Header carrying the HMAC-SHA256 of a webhook body under the webhook's secret: `sha256=<hex>`. */
export const SIGNATURE_HEADER = 'x-otlp-edge-signature';

/**
 * A generic webhook: POST of JSON `{ "version": 1, "node", "sent_at", "changes": [ { "status": "firing" |
 * "resolved", "event", "alert": <as GET /v1/alerts shows it> } ] }`, the changes it asked for (`events`), in order.
 * With `secret_file`, each request carries X-Otlp-Edge-Signature: sha256=<hex HMAC-SHA256 of the body>, keyed by
 * the file's text without surrounding whitespace.
 */
export class WebhookReceiver extends Receiver<Record<string, unknown>> {
  private readonly secret: Buffer | null;
  private readonly events: Set<string>;

  constructor(
    index: number,
    cfg: AggregatorConfig['alerts']['webhooks'][number],
    private readonly nodeId: string,
    metrics: AlertMetrics,
    log: Logger,
  ) {
    const url = new URL(cfg.url);
    super(`webhook-${index}`, url, `${url.pathname}${url.search}`, cfg.headers, cfg.timeout, metrics, log);
    // The key is the file's text without surrounding whitespace (a file written by `echo` ends in a newline).
    this.secret = cfg.secret_file ? Buffer.from(readFileSync(cfg.secret_file, 'utf8').trim()) : null;
    this.events = new Set(cfg.events);
  }

  send(changes: AlertChange[]): void {
    const items = changes
      .filter((c) => this.events.has(eventOf(c)))
      .map((c) => ({ status: c.status, event: eventOf(c), alert: alertJson(c.alert, this.nodeId) }));
    if (items.length > 0) this.enqueue(items);
  }

  protected body(items: Record<string, unknown>[]): { body: Buffer; headers: Record<string, string> } {
    const body = Buffer.from(
      JSON.stringify({ version: 1, node: this.nodeId, sent_at: new Date().toISOString(), changes: items }),
    );
    const headers: Record<string, string> = {};
    if (this.secret !== null)
      headers[SIGNATURE_HEADER] = `sha256=${createHmac('sha256', this.secret).update(body).digest('hex')}`;
    return { body, headers };
  }
}
