import type { Logger } from 'pino';
import type { CircularBuffer } from '../buffer/circular-buffer.js';
import type { StoredBatch } from '../buffer/record.js';
import { RateLimitedLog } from '../../runtime/log/rate-limited-log.js';
import { Backoff } from './backoff.js';
import type { SendResult, UplinkTransport } from './transport.js';

export interface UplinkSenderOptions {
  /** Batches sent and not yet answered; default 4 (`uplink.max_in_flight`). */
  maxInFlight: number;
  /** Payload bytes per second, 0 = unlimited (`uplink.max_bytes_per_second`), for metered cellular links. */
  maxBytesPerSecond: number;
  /** Deadline of one send, ms; default 30 s. */
  sendTimeoutMs?: number;
}

export interface UplinkHooks {
  onSent?(batch: StoredBatch): void;
  onResult?(batch: StoredBatch, result: SendResult, latencyMs: number): void;
  /** The ring version an aggregator reported (for ring-aware agents). */
  onRingVersion?(version: number): void;
}

/**
 * Ships stored batches oldest first, at most `maxInFlight` at a time, and deletes each only when the receiver
 * acknowledged it (at-least-once; the aggregator deduplicates by agent and seq). RETRY waits the receiver's
 * retry-after; REJECTED moves the batch aside, counted and kept; a receiver that is down is retried with
 * exponential backoff and jitter. After a restart everything still stored is sent again.
 */
export class UplinkSender {
  private readonly inFlight = new Map<number, StoredBatch>();
  /** Highest seq read from the buffer so far: the next read starts after it. */
  private cursor = 0;
  private running = false;
  private filling = false;
  private readonly backoff = new Backoff();
  private pausedUntil = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly warn: RateLimitedLog;
  /** Token bucket for the bandwidth cap: bytes available now. */
  private tokens: number;
  private tokensAt = Date.now();

  constructor(
    private readonly buffer: CircularBuffer,
    private readonly transport: UplinkTransport,
    private readonly opts: UplinkSenderOptions,
    private readonly log: Logger,
    private readonly hooks: UplinkHooks = {},
  ) {
    this.warn = new RateLimitedLog(log);
    this.tokens = opts.maxBytesPerSecond;
  }

  /** Batches sent and not yet answered. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  start(): void {
    this.running = true;
    void this.fill();
  }

  /** New batches were committed: look for them. */
  notify(): void {
    if (this.running) void this.fill();
  }

  private async fill(): Promise<void> {
    if (this.filling || !this.running) return;
    this.filling = true;
    try {
      while (this.running && this.inFlight.size < this.opts.maxInFlight && Date.now() >= this.pausedUntil) {
        const batches = await this.buffer.read(this.opts.maxInFlight - this.inFlight.size, this.cursor);
        if (batches.length === 0) break;
        for (const b of batches) {
          this.cursor = Math.max(this.cursor, b.seq);
          this.inFlight.set(b.seq, b);
          void this.dispatch(b);
        }
      }
    } catch (e) {
      if (this.running) this.warn.warn('read', { err: (e as Error).message }, 'uplink could not read the buffer');
    } finally {
      this.filling = false;
    }
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private async dispatch(batch: StoredBatch): Promise<void> {
    if (!this.running) return;
    const wait = Math.max(this.pausedUntil - Date.now(), this.bandwidthWait(batch.payload.length));
    if (wait > 0) return this.later(wait, () => void this.dispatch(batch));
    this.hooks.onSent?.(batch);
    const start = performance.now();
    const result = await this.transport.send(batch, this.opts.sendTimeoutMs ?? 30_000);
    this.hooks.onResult?.(batch, result, performance.now() - start);
    if (!this.running) return;
    switch (result.kind) {
      case 'ok':
        this.backoff.reset();
        if (result.ringVersion) this.hooks.onRingVersion?.(result.ringVersion);
        await this.buffer
          .remove([batch.seq])
          .catch((e: Error) =>
            this.warn.warn('remove', { err: e.message }, 'could not delete a delivered batch; it will be sent again'),
          );
        this.inFlight.delete(batch.seq);
        return this.fill();
      case 'retry':
        this.warn.warn(
          'retry',
          { seq: batch.seq, afterMs: result.afterMs, reason: result.reason },
          'receiver asked to retry',
        );
        return this.later(result.afterMs, () => void this.dispatch(batch));
      case 'rejected':
        this.log.error(
          { seq: batch.seq, points: batch.points, reason: result.reason },
          'receiver rejected a batch; moved aside, it will not be retried',
        );
        await this.buffer
          .quarantine(batch.seq, result.reason)
          .catch((e: Error) => this.log.error({ err: e.message }, 'could not move a rejected batch aside'));
        this.inFlight.delete(batch.seq);
        return this.fill();
      case 'failed': {
        // One pause for the whole sender: every batch in flight waits for the same receiver to come back.
        const delay = this.backoff.next();
        this.pausedUntil = Math.max(this.pausedUntil, Date.now() + delay);
        this.warn.warn(
          `failed:${result.code}`,
          { target: this.transport.target, code: result.code, retryInMs: delay, failures: this.backoff.failures },
          result.reason,
        );
        return this.later(this.pausedUntil - Date.now(), () => void this.dispatch(batch));
      }
    }
  }

  /** ms to wait before `bytes` fit the bandwidth cap (0 when uncapped or available now). */
  private bandwidthWait(bytes: number): number {
    const rate = this.opts.maxBytesPerSecond;
    if (rate <= 0) return 0;
    const now = Date.now();
    // A burst of up to one second's worth; a batch larger than that goes out alone once the bucket is full.
    this.tokens = Math.min(rate, this.tokens + ((now - this.tokensAt) / 1000) * rate);
    this.tokensAt = now;
    const need = Math.min(bytes, rate);
    if (this.tokens >= need) {
      this.tokens -= bytes;
      return 0;
    }
    return Math.ceil(((need - this.tokens) / rate) * 1000);
  }

  /** Stops sending; batches in flight stay stored and go out again after a restart. */
  async stop(): Promise<void> {
    this.running = false;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.transport.close();
  }
}
