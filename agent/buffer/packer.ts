import type { Logger } from 'pino';
import { ZstdCompressor } from '../../protocol/compression.js';
import { RateLimitedLog } from '../../runtime/log/rate-limited-log.js';
import type { CircularBuffer } from './circular-buffer.js';
import { packBatches, PACK_LIMITS } from './pack.js';
import type { StoredBatch } from './record.js';

export interface PackerOptions {
  /** Batches still stored this long after their commit are packed (`buffer.pack_after`); 0 = never. */
  afterMs: number;
  /** zstd level of packed records (`buffer.zstd_level`). */
  zstdLevel: number;
}

/** What the packer needs of the uplink: that it leaves alone the batches being rewritten. */
export interface ReadHolder {
  /** Stops reading until released; while held, `holds(seq)` names the batches it keeps (never rewritten). */
  holdReads(): Promise<{ holds: (seq: number) => boolean; release: () => void }>;
}

export interface PackerHooks {
  onPacked?(batches: number, points: number, bytesBefore: number, bytesAfter: number): void;
}

/** Records read per step; the uplink is held back only while one step is packed. */
const STEP = 1024;

/**
 * Keeps an undelivered backlog compact. Commits are small at field load (they serve ack latency), and an uplink
 * that is down leaves them stored as they are: 5–25 bytes a point. Batches older than `afterMs` are packed, runs
 * of consecutive ones (same signal and route) at a time, into records of the uplink's columnar coding (pack.ts) —
 * about 1 byte a point — so the buffer's cap holds many times more points. Each batch keeps its seq.
 *
 * Batches the uplink holds (in flight, or waiting for a retry) are never packed: before each step it is kept from
 * reading and hands back what it had only queued, and runs are formed of the batches it does not hold.
 */
export class BacklogPacker {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /**
   * Every record at or below this seq has been looked at by a pass (packed, or held by the uplink then): passes start
   * after it, so a long outage's packed backlog is not read again every pass.
   */
  private through = 0;
  private readonly zstd: ZstdCompressor;
  private readonly warn: RateLimitedLog;

  constructor(
    private readonly buffer: CircularBuffer,
    private readonly uplink: ReadHolder | null,
    private readonly opts: PackerOptions,
    log: Logger,
    private readonly hooks: PackerHooks = {},
  ) {
    this.zstd = new ZstdCompressor(opts.zstdLevel);
    this.warn = new RateLimitedLog(log);
  }

  start(): void {
    if (this.opts.afterMs <= 0) return;
    const every = Math.min(10_000, Math.max(1000, this.opts.afterMs / 2));
    this.timer = setInterval(() => void this.run(), every);
    this.timer.unref();
  }

  /** One pass over the backlog (also for tests); a pass under way is joined. */
  run(): Promise<void> {
    this.running ??= this.pass()
      .catch((e: Error) => this.warn.warn('pack', { err: e.message }, 'packing the backlog failed; it stays as it is'))
      .finally(() => (this.running = null));
    return this.running;
  }

  private async pass(): Promise<void> {
    const cutoff = Date.now() - this.opts.afterMs;
    for (;;) {
      const s = this.buffer.stats();
      if (s.batches < 2 || s.oldestCreatedMs === null || s.oldestCreatedMs > cutoff) return;
      const hold = this.uplink ? await this.uplink.holdReads() : { holds: () => false, release: () => undefined };
      let more: boolean;
      try {
        const records = await this.buffer.read(STEP, this.through);
        if (records.length === 0) return;
        more = await this.packStep(records, cutoff, hold.holds);
      } finally {
        hold.release();
      }
      if (!more) return;
    }
  }

  /** Packs the runs among `records`; false when a record too young to pack was met (the rest are younger). */
  private async packStep(records: StoredBatch[], cutoff: number, holds: (seq: number) => boolean): Promise<boolean> {
    let run: StoredBatch[] = [];
    let points = 0;
    const flush = async () => {
      while (run.length >= 2) {
        const packed = packBatches(run, this.zstd);
        const taken = run.slice(0, packed.segments.length);
        const before = taken.reduce((n, b) => n + b.payload.length, 0);
        if (taken.length >= 2 && (await this.buffer.pack(taken, packed)))
          this.hooks.onPacked?.(taken.length, packed.points, before, packed.payload.length);
        run = run.slice(taken.length);
      }
      run = [];
      points = 0;
    };
    for (const b of records) {
      if (b.createdMs > cutoff) {
        await flush();
        return false;
      }
      this.through = b.seq;
      const joins =
        b.segments === undefined &&
        run.length > 0 &&
        b.signal === run[0].signal &&
        b.route === run[0].route &&
        run.length < PACK_LIMITS.batches &&
        points + b.points <= PACK_LIMITS.points;
      if (!joins) await flush();
      if (b.segments !== undefined || holds(b.seq)) {
        await flush();
        continue;
      }
      run.push(b);
      points += b.points;
    }
    await flush();
    return records.length === STEP;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
