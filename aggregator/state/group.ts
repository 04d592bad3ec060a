import type { ClassicLevel } from 'classic-level';
import type { Device } from '../device/device-record.js';
import type { SourceDedup } from '../device/dedup.js';
import { BUCKET_BYTES, writeBucket } from '../device/rollups.js';
import type { ClosedBucket } from '../export/rollup.js';

/** A rollup bucket outside any device record, held while it is being changed (see store.ts). */
export interface ColdBucket {
  key: string;
  b: Float64Array;
  /** False while `b` holds only the changes made since; the stored value is still to be read and merged in. */
  loaded: boolean;
}

type ChainedBatch = ReturnType<ClassicLevel<string, Uint8Array>['batch']>;

/**
 * The changes gathered for one LevelDB write (a group commit): the devices, buckets and dedup records changed since
 * the previous write, and the callers to answer once it is durable. Values are encoded from memory when the write is
 * cut, so a device changed by ten batches in the meantime is written once.
 */
export class Group {
  readonly devices = new Set<Device>();
  /** `r:` key → bucket to put. */
  readonly buckets = new Map<string, Float64Array>();
  /** `d:` source → record to put. */
  readonly sources = new Map<string, SourceDedup>();
  /** Other keys to put as they are (h: merge hashes). */
  readonly puts = new Map<string, Uint8Array>();
  /** Closed 1-minute buckets for rollup exporters, queued as one request when the group is cut. */
  readonly rollups: ClosedBucket[] = [];
  /** Keys to delete (written before the puts, so a put of the same key wins). */
  readonly deletes = new Set<string>();
  /** Buckets whose stored value must be read and merged before this group can be written. */
  unloaded: ColdBucket[] = [];
  private waiting: { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } | null = null;
  /** How the write ended (undefined while it has not): a late done() gets the same answer. */
  private outcome: { err?: Error } | undefined;

  get empty(): boolean {
    return (
      this.devices.size === 0 &&
      this.buckets.size === 0 &&
      this.sources.size === 0 &&
      this.deletes.size === 0 &&
      this.puts.size === 0 &&
      this.rollups.length === 0
    );
  }

  /** Resolves when this group's write is durable; rejects when it failed. */
  done(): Promise<void> {
    if (this.outcome !== undefined) return this.outcome.err ? Promise.reject(this.outcome.err) : Promise.resolve();
    if (this.waiting === null) {
      let resolve!: () => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.waiting = { promise, resolve, reject };
    }
    return this.waiting.promise;
  }

  settle(err?: Error): void {
    this.outcome = { err };
    if (this.waiting === null) return;
    if (err) this.waiting.reject(err);
    else this.waiting.resolve();
  }

  /**
   * Every change as one LevelDB batch (chained: each operation goes to the native batch at once, with less work
   * per operation than an array batch — it matters at tens of thousands of records a second).
   */
  batch(db: ClassicLevel<string, Uint8Array>): ChainedBatch {
    const b = db.batch();
    for (const key of this.deletes) b.del(key);
    let size = this.buckets.size * BUCKET_BYTES;
    const devices: Device[] = [];
    const sizes: number[] = [];
    for (const dev of this.devices) {
      if (dev.deleted) continue;
      const n = dev.encodedSize();
      devices.push(dev);
      sizes.push(n);
      size += n;
    }
    for (const d of this.sources.values()) size += d.encodedSize();
    const buf = Buffer.allocUnsafe(size);
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let at = 0;
    for (let i = 0; i < devices.length; i++) {
      const end = devices[i].encode(buf, view, at);
      if (end - at !== sizes[i])
        throw new Error(`state record of '${devices[i].id}' encoded to ${end - at} bytes, expected ${sizes[i]}`);
      b.put(devices[i].key, buf.subarray(at, end));
      at = end;
    }
    for (const [key, bucket] of this.buckets) {
      const end = writeBucket(view, at, bucket);
      b.put(key, buf.subarray(at, end));
      at = end;
    }
    for (const [source, d] of this.sources) {
      const end = d.encode(view, at);
      b.put(`d:${source}`, buf.subarray(at, end));
      at = end;
    }
    for (const [key, value] of this.puts) b.put(key, value);
    return b;
  }
}
