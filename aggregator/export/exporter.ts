import type { Logger } from 'pino';
import { Signal, signalName } from '../../protocol/otlp/signal.js';
import { Backoff } from '../../runtime/retry/backoff.js';
import { CircuitBreaker } from './breaker.js';
import type { ExportClient, SendOutcome } from './client.js';
import type { ExportMetrics } from './metrics.js';
import type { ExportQueue, QueueEntry } from './queue.js';
import type { StoreExports } from './store-exports.js';

export interface ExporterOptions {
  /** Longest a queued point waits for company before it is sent (`batch.max_delay`). */
  maxDelayMs: number;
  /** Points per request (`batch.max_points`). */
  maxPoints: number;
  /** Deadline of one request (`timeout`). */
  timeoutMs: number;
  /** Requests sent at once (`max_in_flight`). */
  maxInFlight: number;
}

/** Most bytes (as stored) taken into one request; a 413 halves it for the next tries. */
const MAX_REQUEST_BYTES = 8 << 20;

/**
 * Sends one exporter's durable queue to its backend, oldest first, one request at a time: waits until
 * `maxPoints` are queued or the oldest has waited `maxDelayMs` (the seeds' batch processor), sends them as one
 * request per signal, and deletes them once the backend took them. A retryable failure keeps them and waits
 * (exponential backoff with jitter, or the backend's Retry-After/RetryInfo when longer); the circuit breaker stops
 * sending to a backend that keeps failing and probes it with one request after a cool-down. A permanent refusal drops
 * the request, counted. All that is queued survives a restart: after kill -9 a request may be sent again.
 */
export class Exporter {
  readonly breaker = new CircuitBreaker();
  private readonly backoff = new Backoff(500, 30_000);
  private stopped = false;
  private readonly waiting = new Set<() => void>();
  private running: Promise<unknown> | null = null;
  /** A worker is sending the half-open breaker's probe. */
  private probing = false;
  private maxBytes = MAX_REQUEST_BYTES;

  constructor(
    readonly queue: ExportQueue,
    private readonly client: ExportClient,
    private readonly store: StoreExports,
    private readonly opts: ExporterOptions,
    private readonly metrics: ExportMetrics,
    private readonly log: Logger,
  ) {
    queue.onDurable = () => this.poke();
  }

  get name(): string {
    return this.queue.name;
  }

  /** Starts `maxInFlight` workers, each sending one request at a time from the shared queue. */
  start(): void {
    this.running ??= Promise.all(
      Array.from({ length: this.opts.maxInFlight }, () =>
        this.loop().catch((e: Error) => this.log.error({ exporter: this.name, err: e.message }, 'exporter stopped')),
      ),
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.poke();
    await this.running;
    await this.client.close();
  }

  private poke(): void {
    for (const w of [...this.waiting]) w();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(t);
        this.waiting.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      this.waiting.add(wake);
    });
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const { points, oldest } = this.queue.ready();
      if (points === 0) {
        await this.sleep(60_000);
        continue;
      }
      const due = oldest + this.opts.maxDelayMs - Date.now();
      if (points < this.opts.maxPoints && due > 0) {
        await this.sleep(due);
        continue;
      }
      const wait = this.breaker.waitMs();
      if (wait > 0) {
        await this.sleep(wait);
        continue;
      }
      // A probe is one entry, sent by one worker: the least a backend that may still be down is asked to take.
      const probing = this.breaker.state === 'half_open';
      if (probing && this.probing) {
        await this.sleep(100);
        continue;
      }
      const entries = this.queue.take(probing ? 1 : this.opts.maxPoints, this.maxBytes);
      if (entries.length === 0) {
        await this.sleep(this.opts.maxDelayMs || 10); // the rest is being sent by other workers
        continue;
      }
      this.probing = probing;
      const failure = await this.sendAll(entries).finally(() => {
        if (probing) this.probing = false;
      });
      if (failure === null) {
        this.backoff.reset();
        this.breaker.success();
        continue;
      }
      this.breaker.failure();
      const backoff = this.backoff.next();
      const after = Math.max(backoff, failure.afterMs ?? 0);
      this.log.warn(
        {
          exporter: this.name,
          target: this.client.target,
          retryInMs: after,
          breaker: this.breaker.state,
          reason: failure.reason,
        },
        'export failed; the data stays queued',
      );
      await this.sleep(after);
    }
  }

  /** Sends the entries, one request per signal; null when none needs a retry, else the retry's reason. */
  private async sendAll(entries: QueueEntry[]): Promise<{ reason: string; afterMs: number | null } | null> {
    let requests: (Uint8Array | null)[];
    // Stored bytes go as they are when the client sends in their compression (no inflate, no compress).
    const passThrough =
      this.client.sendStored !== undefined && entries.every((e) => e.compression === this.client.passThrough);
    try {
      requests = await this.store.requests(this.queue, entries, passThrough);
    } catch (e) {
      this.queue.release(entries);
      return { reason: `queued requests could not be read: ${(e as Error).message}`, afterMs: null };
    }
    const bySignal = new Map<Signal, { entries: QueueEntry[]; requests: Uint8Array[] }>();
    const unreadable: QueueEntry[] = [];
    entries.forEach((e, i) => {
      const r = requests[i];
      if (r === null) return unreadable.push(e);
      let s = bySignal.get(e.signal);
      if (s === undefined) bySignal.set(e.signal, (s = { entries: [], requests: [] }));
      s.entries.push(e);
      s.requests.push(r);
    });
    if (unreadable.length > 0) this.settle(unreadable, true, 'a queued request could not be read');
    const failed: QueueEntry[] = [];
    let failure: { reason: string; afterMs: number | null } | null = null;
    for (const [signal, group] of bySignal) {
      if (failure !== null || !this.client.takes(signal)) {
        if (failure !== null) failed.push(...group.entries);
        else this.settle(group.entries, true, `${this.client.target} takes no ${signalName(signal)}`);
        continue;
      }
      const points = group.entries.reduce((n, e) => n + e.points, 0);
      const t0 = performance.now();
      const out: SendOutcome = passThrough
        ? await this.client.sendStored!(signal, group.requests, this.opts.timeoutMs)
        : await this.client.send(signal, group.requests, this.opts.timeoutMs);
      this.metrics.sendSeconds.observe({ exporter: this.name }, (performance.now() - t0) / 1000);
      this.metrics.requests.inc({ exporter: this.name, outcome: out.kind });
      switch (out.kind) {
        case 'ok': {
          const unsupported = out.unsupported ?? 0;
          this.metrics.sentPoints.inc({ exporter: this.name }, points - out.refused - unsupported);
          if (out.refused > 0) this.metrics.dropped.inc({ exporter: this.name, reason: 'refused' }, out.refused);
          if (unsupported > 0) this.metrics.dropped.inc({ exporter: this.name, reason: 'unsupported' }, unsupported);
          if (out.refused + unsupported > 0)
            this.log.warn(
              { exporter: this.name, refused: out.refused, unsupported, message: out.message },
              'part of a request was not kept by the backend',
            );
          this.maxBytes = Math.min(MAX_REQUEST_BYTES, this.maxBytes * 2);
          this.settle(group.entries, false, '');
          break;
        }
        case 'rejected':
          this.settle(group.entries, true, out.reason);
          break;
        case 'too_large':
          if (group.entries.length === 1 && this.maxBytes <= 64 << 10) {
            this.settle(group.entries, true, out.reason);
            break;
          }
          this.maxBytes = Math.max(
            64 << 10,
            Math.floor(
              Math.min(
                this.maxBytes,
                group.entries.reduce((n, e) => n + e.bytes, 0),
              ) / 2,
            ),
          );
          failed.push(...group.entries);
          failure = { reason: out.reason, afterMs: 0 };
          break;
        case 'retry':
          failed.push(...group.entries);
          failure = { reason: out.reason, afterMs: out.afterMs };
          break;
      }
    }
    this.queue.release(failed);
    return failure;
  }

  /**
   * Removes entries from the queue (in the next group commit; `dropped` ones counted and logged with `why`). Not
   * awaited: the next request goes while the deletion is written. Should that write fail, the store reloads the
   * queue and the entries are sent again (at least once).
   */
  private settle(entries: QueueEntry[], dropped: boolean, why: string): void {
    if (dropped) {
      this.log.error(
        {
          exporter: this.name,
          target: this.client.target,
          points: entries.reduce((n, e) => n + e.points, 0),
          reason: why,
        },
        'export refused for good: the points are dropped and counted',
      );
    }
    this.store
      .change((g) => this.queue.settle(g, entries, dropped))
      .catch((e: Error) =>
        this.log.warn({ exporter: this.name, err: e.message }, 'sent requests could not be removed from the queue'),
      );
  }
}
