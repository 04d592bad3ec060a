import type { Logger } from 'pino';
import type { CircularBuffer } from '../buffer/circular-buffer.js';
import type { StoredBatch } from '../buffer/record.js';
import { RateLimitedLog } from '../../runtime/log/rate-limited-log.js';
import { Backoff } from '../../runtime/retry/backoff.js';
import type { SendResult, UplinkTransport } from './transport.js';
import { nextRequest, REQUEST_LIMITS } from './next-request.js';

export interface UplinkSenderOptions {
  /** Requests sent and not yet answered; default 4 (`uplink.max_in_flight`). */
  maxInFlight: number;
  /** Bytes on the wire per second, 0 = unlimited (`uplink.max_bytes_per_second`), for metered cellular links. */
  maxBytesPerSecond: number;
  /** Deadline of one request, ms; default 30 s. */
  sendTimeoutMs?: number;
  /**
   * Longest a stored batch waits for others to share its request, ms, counted from its commit
   * (`uplink.max_delay`); 0 sends at once what is there. Default 50.
   */
  maxDelayMs?: number;
  /** A request is sent at once when it holds this many points (default 16,384) … */
  maxRequestPoints?: number;
  /** … or this many stored bytes (default 4 MiB), or this many batches (default 4,096). */
  maxRequestBytes?: number;
  maxRequestBatches?: number;
}

export interface UplinkHooks {
  /** A request of these batches is about to be sent. */
  onSent?(batches: readonly StoredBatch[]): void;
  /** Its answer, the time it took, and the bytes it put on the wire (0 where the transport does not say). */
  onResult?(batches: readonly StoredBatch[], result: SendResult, latencyMs: number, wireBytes: number): void;
  /** The ring version an aggregator reported (for ring-aware agents). */
  onRingVersion?(version: number): void;
}

/**
 * Ships stored batches oldest first as few, large requests, and deletes each batch only when the receiver
 * acknowledged it (at-least-once; the aggregator deduplicates by agent and batch seq, however batches were grouped).
 *
 * Batches of one route (the aggregator their devices belonged to) share a request: a request is sent when it is
 * full, or when its oldest batch has waited `maxDelayMs` since its commit, so the commit keeps serving ack latency
 * while the link sees few requests at any rate. At most `maxInFlight` requests are unanswered; what arrives
 * meanwhile waits and goes out together. RETRY puts a request's batches back after the receiver's retry-after;
 * REJECTED moves batches aside, counted and kept; a request the receiver could not read is split and its batches
 * sent alone; a receiver that is down is retried with exponential backoff and jitter. After a restart everything
 * still stored is sent again.
 */
export class UplinkSender {
  private readonly opts: Required<UplinkSenderOptions>;
  /** Read from the buffer and not in flight, by seq. */
  private queue: StoredBatch[] = [];
  private readonly queued = new Set<number>();
  private queuedPoints = 0;
  /** Seqs in requests not yet answered. */
  private readonly inFlight = new Set<number>();
  private requests = 0;
  /** Batches to send alone, and batches not to send before a time (a receiver's retry-after). */
  private readonly alone = new Set<number>();
  private readonly notBefore = new Map<number, number>();
  /** Batches the cap dropped before they were read, by the fill count when it did (see forget). */
  private readonly droppedUnread = new Map<number, number>();
  private fills = 0;
  /** Highest seq read from the buffer so far: the next read starts after it. */
  private cursor = 0;
  /** Batches above this are not read (the packer is rewriting them); Infinity = none. */
  private ceiling = Infinity;
  private running = false;
  private reading = false;
  private readonly backoff = new Backoff();
  private pausedUntil = 0;
  private wake: NodeJS.Timeout | null = null;
  private wakeAt = 0;
  private readonly warn: RateLimitedLog;
  /** Token bucket for the bandwidth cap: bytes available now (negative after a request larger than the balance). */
  private tokens: number;
  private tokensAt = Date.now();

  constructor(
    private readonly buffer: CircularBuffer,
    private readonly transport: UplinkTransport,
    options: UplinkSenderOptions,
    private readonly log: Logger,
    private readonly hooks: UplinkHooks = {},
  ) {
    this.opts = {
      sendTimeoutMs: 30_000,
      ...REQUEST_LIMITS,
      ...stripUndefined(options),
    } as Required<UplinkSenderOptions>;
    this.warn = new RateLimitedLog(log);
    this.tokens = options.maxBytesPerSecond;
  }

  /** Whether batch `seq` is part of a request awaiting its answer (the buffer's cap passes it over). */
  isSending(seq: number): boolean {
    return this.inFlight.has(seq);
  }

  /**
   * The buffer's cap dropped these batches: those read and waiting here are not sent (they count as dropped), nor
   * are those a read under way may still return (its snapshot can predate the deletion).
   */
  forget(seqs: readonly number[]): void {
    for (const s of seqs) if (!this.queued.has(s) && !this.inFlight.has(s)) this.droppedUnread.set(s, this.fills);
    const gone = new Set(seqs.filter((s) => this.queued.has(s)));
    if (gone.size === 0) return;
    this.queue = this.queue.filter((b) => {
      if (!gone.has(b.seq)) return true;
      this.queued.delete(b.seq);
      this.queuedPoints -= b.points;
      this.alone.delete(b.seq);
      this.notBefore.delete(b.seq);
      return false;
    });
  }

  /** Requests sent and not yet answered. */
  get inFlightCount(): number {
    return this.requests;
  }

  /**
   * Keeps the sender from reading until released, and resolves once no read is under way, having handed back the
   * batches it had queued (they are read again later; those waiting for a retry-after or to go alone are kept).
   * While held, `holds(seq)` tells the batches it keeps (queued or in flight): all others may be rewritten (packed).
   */
  async holdReads(): Promise<{ holds: (seq: number) => boolean; release: () => void }> {
    this.ceiling = 0;
    while (this.reading) await new Promise((r) => setTimeout(r, 5));
    const kept = (b: StoredBatch) => this.alone.has(b.seq) || this.notBefore.has(b.seq);
    const keep = this.queue.filter(kept);
    if (keep.length < this.queue.length) {
      const back = this.queue.filter((b) => !kept(b));
      this.cursor = Math.min(this.cursor, back[0].seq - 1);
      for (const b of back) {
        this.queued.delete(b.seq);
        this.queuedPoints -= b.points;
      }
      this.queue = keep;
    }
    return {
      holds: (seq) => this.inFlight.has(seq) || this.queued.has(seq),
      release: () => {
        this.ceiling = Infinity;
        this.pump();
      },
    };
  }

  start(): void {
    this.running = true;
    void this.fill();
  }

  /** New batches were committed: look for them. */
  notify(): void {
    if (this.running) void this.fill();
  }

  /** Reads what was committed since the last read (up to a bounded read-ahead), then sends what is ready. */
  private async fill(): Promise<void> {
    if (this.reading || !this.running) return;
    this.reading = true;
    const fill = ++this.fills;
    try {
      while (this.running && this.room()) {
        const batches = await this.buffer.read(Math.min(1024, this.opts.maxRequestBatches), this.cursor, this.ceiling);
        if (batches.length === 0) break;
        for (const b of batches) {
          this.cursor = Math.max(this.cursor, b.seq);
          // After the queue was handed back (holdReads), batches still held are met again: not twice.
          if (this.inFlight.has(b.seq) || this.queued.has(b.seq) || this.droppedUnread.has(b.seq)) continue;
          this.queue.push(b);
          this.queued.add(b.seq);
          this.queuedPoints += b.points;
        }
      }
    } catch (e) {
      if (this.running) this.warn.warn('read', { err: (e as Error).message }, 'uplink could not read the buffer');
    } finally {
      this.reading = false;
      // A drop reported before this fill began is behind every read from now on.
      for (const [seq, at] of this.droppedUnread) if (at < fill) this.droppedUnread.delete(seq);
    }
    this.pump();
  }

  /** Sends every request that is ready while requests may be in flight; else sleeps until the next is due. */
  private pump(): void {
    if (!this.running) return;
    const now = Date.now();
    let due = Infinity;
    while (this.requests < this.opts.maxInFlight) {
      if (now < this.pausedUntil) {
        due = Math.min(due, this.pausedUntil);
        break;
      }
      const next = nextRequest(this.queue, now, this.opts, this.alone, this.notBefore);
      if (next.positions === null) {
        due = Math.min(due, next.dueAt);
        break;
      }
      const wait = this.bandwidthWait(now, next.bytes);
      if (wait > 0) {
        due = Math.min(due, now + wait);
        break;
      }
      this.dispatch(this.take(next.positions), next.alone);
    }
    const newest = Math.min(this.buffer.stats().newestSeq ?? 0, this.ceiling);
    if (!this.reading && this.room() && newest > this.cursor) void this.fill();
    this.sleepUntil(due);
  }

  /** The read-ahead is bounded: about two full requests per request in flight. */
  private room(): boolean {
    const o = this.opts;
    return this.queue.length < o.maxRequestBatches * 2 && this.queuedPoints < o.maxRequestPoints * (o.maxInFlight + 1);
  }

  /** Removes the batches at these queue positions (ascending) and returns them. */
  private take(positions: number[]): StoredBatch[] {
    const out: StoredBatch[] = [];
    const pick = new Set(positions);
    const rest: StoredBatch[] = [];
    this.queue.forEach((b, i) => (pick.has(i) ? out.push(b) : rest.push(b)));
    this.queue = rest;
    for (const b of out) {
      this.queued.delete(b.seq);
      this.queuedPoints -= b.points;
      this.inFlight.add(b.seq);
      this.notBefore.delete(b.seq);
    }
    return out;
  }

  /** Puts batches back in the queue (in seq order), not to be sent before `notBefore`. */
  private requeue(batches: readonly StoredBatch[], notBefore = 0): void {
    for (const b of batches) {
      this.inFlight.delete(b.seq);
      if (notBefore > 0) this.notBefore.set(b.seq, notBefore);
      this.queuedPoints += b.points;
      this.queued.add(b.seq);
    }
    this.queue = [...this.queue, ...batches].sort((a, b) => a.seq - b.seq);
  }

  private sleepUntil(at: number): void {
    if (at === Infinity || !this.running) return;
    if (this.wake !== null && this.wakeAt <= at) return;
    if (this.wake !== null) clearTimeout(this.wake);
    this.wakeAt = at;
    this.wake = setTimeout(
      () => {
        this.wake = null;
        this.pump();
      },
      Math.max(0, at - Date.now()),
    );
  }

  private dispatch(batches: StoredBatch[], alone: boolean): void {
    this.requests++;
    // Charged now at the stored size (requests in flight count against the cap), settled at the real size after.
    const estimate = batches.reduce((n, b) => n + b.payload.length, 0);
    this.charge(estimate);
    this.hooks.onSent?.(batches);
    const start = performance.now();
    void this.transport.send(batches, { deadlineMs: this.opts.sendTimeoutMs, alone }).then((result) => {
      this.charge((result.wireBytes ?? estimate) - estimate);
      return this.answered(batches, result, performance.now() - start);
    });
  }

  private async answered(
    batches: StoredBatch[],
    result: SendResult & { wireBytes?: number },
    latencyMs: number,
  ): Promise<void> {
    const wireBytes = result.wireBytes ?? 0;
    this.hooks.onResult?.(batches, result, latencyMs, wireBytes);
    if (!this.running) return;
    try {
      switch (result.kind) {
        case 'ok': {
          this.backoff.reset();
          if (result.ringVersion) this.hooks.onRingVersion?.(result.ringVersion);
          // Rejected seqs name batches; a packed record holding one is set aside whole (its other batches were
          // delivered, and are kept aside with it).
          const rejected = new Map<number, string>();
          for (const r of result.rejected ?? []) {
            const holder = batches.find((b) => b.seq === r.seq || b.segments?.some((s) => s.seq === r.seq));
            if (holder && !rejected.has(holder.seq)) rejected.set(holder.seq, r.reason);
          }
          for (const b of batches) if (rejected.has(b.seq)) await this.quarantine(b, rejected.get(b.seq)!);
          const delivered = batches.filter((b) => !rejected.has(b.seq)).map((b) => b.seq);
          // The buffer may already have dropped some (cap reached while they were in flight): ignored there.
          await this.buffer
            .remove(delivered)
            .catch((e: Error) =>
              this.warn.warn(
                'remove',
                { err: e.message },
                'could not delete delivered batches; they will be sent again',
              ),
            );
          for (const b of batches) {
            this.inFlight.delete(b.seq);
            this.alone.delete(b.seq);
          }
          return;
        }
        case 'retry':
          this.warn.warn(
            'retry',
            { seqs: seqRange(batches), afterMs: result.afterMs, reason: result.reason },
            'receiver asked to retry',
          );
          return this.requeue(batches, Date.now() + result.afterMs);
        case 'rejected':
          for (const b of batches) await this.quarantine(b, result.reason);
          for (const b of batches) this.inFlight.delete(b.seq);
          return;
        case 'split':
          this.warn.warn(
            'split',
            { seqs: seqRange(batches), reason: result.reason },
            'the receiver could not read a combined request; its batches are sent one by one',
          );
          for (const b of batches) this.alone.add(b.seq);
          return this.requeue(batches);
        case 'failed': {
          // One pause for the whole sender: every request waits for the same receiver to come back.
          const delay = this.backoff.next();
          this.pausedUntil = Math.max(this.pausedUntil, Date.now() + delay);
          this.warn.warn(
            `failed:${result.code}`,
            { target: this.transport.target, code: result.code, retryInMs: delay, failures: this.backoff.failures },
            result.reason,
          );
          return this.requeue(batches);
        }
      }
    } finally {
      this.requests--;
      this.pump();
    }
  }

  private async quarantine(b: StoredBatch, reason: string): Promise<void> {
    this.alone.delete(b.seq);
    this.log.error(
      { seq: b.seq, points: b.points, reason },
      'receiver rejected a batch; moved aside, it will not be retried',
    );
    await this.buffer
      .quarantine(b.seq, reason)
      .catch((e: Error) => this.log.error({ err: e.message }, 'could not move a rejected batch aside'));
  }

  /** ms until the bandwidth cap allows a request of about `bytes` (0 when uncapped or allowed now). */
  private bandwidthWait(now: number, bytes: number): number {
    const rate = this.opts.maxBytesPerSecond;
    if (rate <= 0) return 0;
    // A burst of up to one second's worth; a request larger than that goes out alone once the bucket is full.
    this.tokens = Math.min(rate, this.tokens + ((now - this.tokensAt) / 1000) * rate);
    this.tokensAt = now;
    const need = Math.min(bytes, rate);
    return this.tokens >= need ? 0 : Math.ceil(((need - this.tokens) / rate) * 1000);
  }

  /** Takes a request's bytes on the wire from the bucket. */
  private charge(bytes: number): void {
    if (this.opts.maxBytesPerSecond > 0) this.tokens -= bytes;
  }

  /** Stops sending; batches in flight stay stored and go out again after a restart. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.wake !== null) clearTimeout(this.wake);
    this.wake = null;
    await this.transport.close();
  }
}

function seqRange(batches: readonly StoredBatch[]): string {
  return batches.length === 1 ? String(batches[0].seq) : `${batches[0].seq}…${batches[batches.length - 1].seq}`;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
