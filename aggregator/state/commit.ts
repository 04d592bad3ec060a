import type { ClassicLevel } from 'classic-level';
import type { RollupSink } from '../device/apply.js';
import { HEAD, HEAD_MINUTE, SLOT, type Device } from '../device/device-record.js';
import { Group, type ColdBucket } from './group.js';
import type { RollupExport } from '../export/rollup.js';
import { addPoint, copyBucket, mergeBucket, minuteOfKey, newBucket, readBucket, rollupKey } from '../device/rollups.js';

/** Buckets outside device records kept in memory after their write, for late points that come in runs. */
const COLD_KEEP = 20_000;

/**
 * Group commit for the state store. Changes are applied to memory at once and gathered in the pending Group; one
 * LevelDB write is in flight at a time, and every change made while it is in flight goes into the next single
 * `batch(ops, { sync })`. Callers wait on the group holding their change.
 *
 * Rollup buckets outside device records (a head rolled over, a late point for an older minute) are changed in memory
 * too: a bucket not held in memory starts empty, collects the changes, and has its stored value read and merged in
 * before its group is written (bucket merges commute, so the order does not matter). A group is cut only once all
 * its reads are done, so a write never carries changes of batches that are not in it. A bucket leaves memory only
 * when no unwritten change holds it, so a read from LevelDB always sees its latest value.
 */
export class Committer implements RollupSink {
  pending = new Group();
  inFlight: Group | null = null;
  readonly cold = new Map<string, ColdBucket>();
  /** LevelDB writes completed (tests check that group commit keeps this far below the number of batches). */
  writes = 0;
  private scheduled = false;
  private loading = false;
  /** The read or write under way, settled or not (memory is reloaded only once it has settled). */
  private io: Promise<unknown> = Promise.resolve();

  constructor(
    /** Replaced when the store reopens its database after a failed write. */
    public db: ClassicLevel<string, Uint8Array>,
    private readonly sync: boolean,
    private readonly onFailure: (err: Error) => void,
  ) {}

  /** Export `mode: rollup`: told of every closed bucket; its request is cut with the group. */
  rollupExport: RollupExport | null = null;

  rolled(dev: Device, slot: number, minute: number): void {
    this.rollupExport?.rolled(this.pending, dev, slot, minute);
    const key = rollupKey(dev.id, dev.shape.name(slot), minute);
    const b = copyBucket(dev.m, slot * SLOT + HEAD);
    const had = this.pending.buckets.get(key);
    if (had !== undefined) mergeBucket(had, b);
    else this.pending.buckets.set(key, b);
  }

  late(dev: Device, slot: number, minute: number, value: number, ts: number): void {
    addPoint(this.bucketFor(rollupKey(dev.id, dev.shape.name(slot), minute)), value, ts);
  }

  /** The bucket under `key` (older than its metric's head) to change; it goes into the pending write. */
  bucketFor(key: string): Float64Array {
    const g = this.pending;
    const b = g.buckets.get(key);
    if (b !== undefined) return b;
    let c = this.cold.get(key);
    if (c === undefined) {
      const written = this.inFlight?.buckets.get(key);
      // A bucket the write in flight carries is already encoded: that value is what LevelDB will hold.
      c = written !== undefined ? { key, b: written, loaded: true } : { key, b: newBucket(), loaded: false };
      if (!c.loaded) g.unloaded.push(c);
    } else this.cold.delete(key); // re-inserted below: most recently used last
    this.cold.set(key, c);
    g.buckets.set(key, c.b);
    return c.b;
  }

  /** Merges a whole bucket into the device: into its head, as a newer head, or into the stored older bucket. */
  mergeInto(dev: Device, metric: string, minute: number, b: Float64Array): void {
    const slot = dev.slotOf(metric);
    if (slot < 0) return;
    const m = dev.m;
    const o = slot * SLOT;
    const head = m[o + HEAD_MINUTE];
    if (minute === head) mergeBucket(m, b, o + HEAD, 0);
    else if (minute > head) {
      if (head !== -Infinity) this.rolled(dev, slot, head);
      m[o + HEAD_MINUTE] = minute;
      m.set(b, o + HEAD);
    } else mergeBucket(this.bucketFor(rollupKey(dev.id, metric, minute)), b);
  }

  /** Deletes stored keys in the next write, except those it puts anew (they are newer). */
  deleteStored(keys: string[]): void {
    const g = this.pending;
    for (const k of keys) if (!g.buckets.has(k)) g.deletes.add(k);
  }

  /** Resolves when every change made so far is durable. */
  barrier(): Promise<void> {
    if (!this.pending.empty) {
      this.schedule();
      return this.pending.done();
    }
    return this.inFlight?.done() ?? Promise.resolve();
  }

  /** Starts a write soon (after the current turn, so changes arriving together share it) unless one is in flight. */
  schedule(): void {
    if (this.scheduled || this.inFlight !== null || this.loading) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.inFlight !== null || this.loading) return;
    const g = this.pending;
    if (g.unloaded.length > 0) return this.load(g);
    if (g.empty) return; // nothing to write, so nobody waits on it
    this.pending = new Group();
    this.inFlight = g;
    let batch;
    try {
      this.rollupExport?.cut(g);
      batch = g.batch(this.db);
    } catch (e) {
      this.onFailure(e as Error);
      return;
    }
    const write = batch.write({ sync: this.sync });
    this.io = write.catch(() => undefined);
    write.then(
      () => {
        if (this.inFlight !== g) return; // reset meanwhile: its callers were answered with the error
        this.writes++;
        this.inFlight = null;
        g.settle();
        this.trimCold();
        if (!this.pending.empty || this.pending.unloaded.length > 0) this.flush();
      },
      (e: Error) => {
        if (this.inFlight === g) this.onFailure(e);
      },
    );
  }

  /** Reads the stored values of the group's new buckets, merges them in, then writes (or reads again). */
  private load(g: Group): void {
    const entries = g.unloaded;
    g.unloaded = [];
    this.loading = true;
    const read = this.db.getMany(entries.map((c) => c.key));
    this.io = read.catch(() => undefined);
    read.then(
      (values) => {
        if (this.pending !== g) return; // reset meanwhile
        this.loading = false;
        const stored = newBucket();
        values.forEach((v, i) => {
          if (v === undefined) return;
          readBucket(new DataView(v.buffer, v.byteOffset, v.byteLength), 0, stored);
          // The stored value is older than the changes gathered meanwhile: on a `last` tie, theirs wins.
          mergeBucket(entries[i].b, stored);
        });
        for (const c of entries) c.loaded = true;
        this.flush();
      },
      (e: Error) => {
        if (this.pending === g) this.onFailure(e);
      },
    );
  }

  /** Drops written buckets from memory past COLD_KEEP, least recently used first. */
  private trimCold(): void {
    let excess = this.cold.size - COLD_KEEP;
    if (excess <= 0) return;
    for (const [key, c] of this.cold) {
      if (excess <= 0) break;
      if (!c.loaded || this.pending.buckets.has(key)) continue;
      this.cold.delete(key);
      excess--;
    }
  }

  /**
   * A copy of what memory holds for the buckets in [gte, lt) (keys) with minute in [fromMin, toMin): key → bucket,
   * and whether it is complete (else it holds only changes not yet merged with the stored value).
   */
  overlay(gte: string, lt: string, fromMin: number, toMin: number): Map<string, { b: Float64Array; loaded: boolean }> {
    const out = new Map<string, { b: Float64Array; loaded: boolean }>();
    const take = (key: string, b: Float64Array, loaded: boolean) => {
      if (key < gte || key >= lt) return;
      const minute = minuteOfKey(key);
      if (minute >= fromMin && minute < toMin) out.set(key, { b: b.slice(), loaded });
    };
    if (this.inFlight !== null) for (const [k, b] of this.inFlight.buckets) take(k, b, true);
    for (const [k, c] of this.cold) take(k, c.b, c.loaded);
    for (const [k, b] of this.pending.buckets) take(k, b, this.cold.get(k)?.loaded ?? true);
    return out;
  }

  /** Forgets unwritten buckets in [gte, lt) (a deleted device); returns the keys the write in flight puts there. */
  forget(gte: string, lt: string): string[] {
    for (const k of [...this.pending.buckets.keys()]) if (k >= gte && k < lt) this.pending.buckets.delete(k);
    for (const k of [...this.cold.keys()]) if (k >= gte && k < lt) this.cold.delete(k);
    return this.inFlight === null ? [] : [...this.inFlight.buckets.keys()].filter((k) => k >= gte && k < lt);
  }

  /** After a failed read or write: every caller waiting is answered with the error, and memory is to be reloaded. */
  reset(err: Error): void {
    const groups = [this.inFlight, this.pending];
    this.inFlight = null;
    this.pending = new Group();
    this.loading = false;
    this.cold.clear();
    for (const g of groups) g?.settle(err);
  }

  /** Resolves when the read or write under way (if any) has settled. */
  quiet(): Promise<unknown> {
    return this.io;
  }

  /** Resolves when nothing is waiting to be written (errors are the callers' to see). */
  async idle(): Promise<void> {
    for (;;) {
      const p = !this.pending.empty || this.pending.unloaded.length > 0 ? this.barrier() : this.inFlight?.done();
      if (p === undefined) return;
      await p.catch(() => undefined);
    }
  }
}
