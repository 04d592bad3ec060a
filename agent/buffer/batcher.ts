import { Signal } from '../../protocol/otlp/signal.js';
import type { DeviceEvent, Reading } from '../../protocol/payload/types.js';
import { ReadingColumns } from '../../protocol/otlp/reading-columns.js';
import type { MetricsEncoder } from '../../protocol/otlp/metrics-encoder.js';
import type { LogsEncoder } from '../../protocol/otlp/logs-encoder.js';
import { Compression, type ZstdCompressor } from '../../protocol/compression.js';
import type { CircularBuffer } from './circular-buffer.js';
import type { NewBatch } from './record.js';

/** Resolves in the check phase of the next event-loop turn, after the I/O that is ready now. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Called once the readings it was given with are durable (err undefined) or could not be stored. */
export type Done = (err?: Error) => void;

export interface BatcherOptions {
  /** Longest a reading waits before its batch is committed, ms; default 200 (`batch.max_delay`). */
  maxDelayMs: number;
  /** Points that close a batch at once; default 5,000 (`batch.max_points`). */
  maxPoints: number;
  /**
   * Points held uncommitted before QoS 0 input is refused (disk slower than intake); default 20 × maxPoints.
   * QoS 1 input is bounded by the devices' own in-flight windows and is never refused here.
   */
  maxPendingPoints?: number;
  /**
   * Where each device's data should go (the address of its owner on the aggregators' ring), or absent to store one
   * batch for all: with it, a commit stores one batch per owner so the uplink needs no forwarding.
   */
  routeOf?: (deviceId: string) => string;
}

export interface CommitInfo {
  batches: number;
  points: number;
  bytes: number;
  durationMs: number;
  droppedBatches: number;
  droppedPoints: number;
}

export interface BatcherHooks {
  onCommit?(info: CommitInfo): void;
  onCommitError?(err: Error, points: number): void;
}

/**
 * Devices' pending data grouped by where it should go (the owner's address, or '' for any), cut into parts of about
 * `maxPoints` (whole devices; a part grows past it only by one device's data): a commit that gathered more while the
 * previous write was on disk still stores batches of the configured size, for the uplink and for compression.
 */
function splitByRoute<T>(
  byDevice: Iterable<[string, T]>,
  route: (deviceId: string) => string,
  count: (items: T) => number,
  maxPoints: number,
): { key: string; items: [string, T][]; points: number }[] {
  const open = new Map<string, { key: string; items: [string, T][]; points: number }>();
  const out: { key: string; items: [string, T][]; points: number }[] = [];
  for (const [deviceId, items] of byDevice) {
    const key = route(deviceId);
    let part = open.get(key);
    if (part === undefined || part.points >= maxPoints) {
      part = { key, items: [], points: 0 };
      open.set(key, part);
      out.push(part);
    }
    part.items.push([deviceId, items]);
    part.points += count(items);
  }
  return out;
}

/**
 * Group commit: readings and events accumulate per device; a batch is committed when it reaches maxPoints, when
 * maxDelay passes, or — whenever acknowledgements are waiting — as soon as the previous write has finished. One write
 * is in flight at a time, so under QoS 1 load each fsync carries everything that arrived during the one before it:
 * a single device with 100 messages in flight still gets thousands of acks per second, and an idle QoS 0 stream
 * still fills batches for compression.
 */
export class Batcher {
  /** Readings waiting for a commit, and the columns of the commit before (emptied, kept for their capacity). */
  private readings = new ReadingColumns();
  private spare = new ReadingColumns();
  private events = new Map<string, DeviceEvent[]>();
  private points = 0;
  private waiters: Done[] = [];
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private writing: Promise<void> | null = null;
  private readonly maxPending: number;

  constructor(
    private readonly opts: BatcherOptions,
    private readonly metricsEncoder: MetricsEncoder,
    private readonly logsEncoder: LogsEncoder,
    private readonly compressor: ZstdCompressor,
    private readonly buffer: CircularBuffer,
    private readonly hooks: BatcherHooks = {},
  ) {
    this.maxPending = opts.maxPendingPoints ?? opts.maxPoints * 20;
  }

  /** Points waiting for a commit. */
  get pendingPoints(): number {
    return this.points;
  }

  /** False when QoS 0 input should be refused because commits are falling behind. */
  get acceptsBestEffort(): boolean {
    return this.points < this.maxPending;
  }

  addReadings(deviceId: string, readings: Reading[], done: Done | null): void {
    this.points += this.readings.add(deviceId, readings);
    this.added(done);
  }

  addEvents(deviceId: string, events: DeviceEvent[], done: Done | null): void {
    const list = this.events.get(deviceId);
    if (list === undefined) this.events.set(deviceId, events);
    else for (const e of events) list.push(e);
    this.points += events.length;
    this.added(done);
  }

  private added(done: Done | null): void {
    if (done !== null) this.waiters.push(done);
    if (this.writing !== null || this.immediate !== null) return; // a commit is already on its way
    if (this.points >= this.opts.maxPoints || done !== null) {
      // Let the rest of this socket read (and other ready sockets) join before committing.
      this.immediate = setImmediate(() => this.commit());
      return;
    }
    if (this.timer === null) this.timer = setTimeout(() => this.commit(), this.opts.maxDelayMs);
  }

  /** Commits whatever is pending and waits for every write to finish (shutdown uses this). */
  async flush(): Promise<void> {
    while (this.writing !== null || this.points > 0 || this.waiters.length > 0) {
      if (this.writing !== null) await this.writing;
      else this.commit();
    }
  }

  private commit(): void {
    if (this.immediate !== null) {
      clearImmediate(this.immediate);
      this.immediate = null;
    }
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.writing !== null || (this.points === 0 && this.waiters.length === 0)) return;
    const readings = this.readings;
    const events = this.events;
    const waiters = this.waiters;
    const points = this.points;
    this.readings = this.spare;
    this.events = new Map();
    this.waiters = [];
    this.points = 0;
    this.writing = this.write(readings, events, points)
      .then(
        () => {
          for (const w of waiters) w();
        },
        (err: Error) => {
          this.hooks.onCommitError?.(err, points);
          for (const w of waiters) w(err);
        },
      )
      .finally(() => {
        readings.clear();
        this.spare = readings;
        this.writing = null;
        if (this.waiters.length > 0 || this.points >= this.opts.maxPoints) this.commit();
        else if (this.points > 0 && this.timer === null)
          this.timer = setTimeout(() => this.commit(), this.opts.maxDelayMs);
      });
  }

  private async write(readings: ReadingColumns, events: Map<string, DeviceEvent[]>, points: number): Promise<void> {
    const start = performance.now();
    const info: CommitInfo = { batches: 0, points, bytes: 0, durationMs: 0, droppedBatches: 0, droppedPoints: 0 };
    const route = this.opts.routeOf ?? (() => '');
    const max = this.opts.maxPoints;
    const parts: (() => NewBatch)[] = [];
    const groups = readings.byDevice();
    const devices = readings.deviceIds.slice(0, readings.deviceCount).map((id, d): [string, number] => [id, d]);
    for (const part of splitByRoute(devices, route, (d) => readings.devicePoints[d], max)) {
      const indices = part.items.map(([, d]) => d);
      parts.push(() =>
        this.compress(
          Signal.METRICS,
          this.metricsEncoder.encodeColumns(readings, indices, groups),
          part.points,
          part.key,
        ),
      );
    }
    for (const part of splitByRoute(events, route, (es) => es.length, max)) {
      const devices = part.items.map(([deviceId, es]) => ({ deviceId, events: es }));
      parts.push(() => this.compress(Signal.LOGS, this.logsEncoder.encode(devices), part.points, part.key));
    }
    // One part (about maxPoints, ~1 ms per 1,000 points) per event-loop turn: a commit that gathered 30,000 points
    // while the disk was busy would otherwise hold the loop for 20-30 ms, and every device's input with it.
    const batches: NewBatch[] = [];
    for (const encode of parts) {
      if (batches.length > 0) await nextTurn();
      batches.push(encode());
    }
    for (const r of await this.buffer.appendMany(batches)) {
      info.droppedBatches += r.droppedBatches;
      info.droppedPoints += r.droppedPoints;
    }
    info.batches = batches.length;
    info.bytes = batches.reduce((n, b) => n + b.payload.length, 0);
    info.durationMs = performance.now() - start;
    this.hooks.onCommit?.(info);
  }

  private compress(signal: Signal, request: Uint8Array, points: number, route: string): NewBatch {
    return { signal, compression: Compression.ZSTD, points, payload: this.compressor.compress(request), route };
  }

  /** Stops the timers; call flush() first to keep what is pending. */
  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
  }
}
