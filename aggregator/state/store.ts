import { ClassicLevel } from 'classic-level';
import { mkdirSync } from 'node:fs';
import { SourceDedup } from './dedup.js';
import { Bucket, DeviceRecord } from './device-record.js';
import { addPoint, bucketStart, newBucket, BUCKET_MS } from './rollups.js';
import type { DeviceData, DeviceView, RollupPoint } from './types.js';

/**
 * An aggregator node's per-device state, durable in LevelDB (DESIGN.md "Per-device state on the owner").
 *
 * LevelDB layout, format 1 (utf8 keys, binary values):
 *
 *   meta:format                               "1"
 *   s:<device>                                device record: last seen, latest per metric, seq tracker (device-record.ts)
 *   r:<device>\0<metric>\0<start as 12 hex>   1-minute rollup: [min, max, sum, count, last, lastTs] float64 LE
 *   d:<source>                                applied batch seqs of one agent: [floor, seqs above…] float64 LE
 *
 * Device records are small and all held in memory; rollups only for recent minutes (HOT_MS), older ones are read
 * from LevelDB when a late point or a query needs them. Each apply() changes memory at once and joins the next group
 * commit: one fsync'd LevelDB batch carries every device, bucket and dedup record changed since the previous one,
 * and each caller is answered when the write carrying its changes is on disk.
 */

/** Buckets of the last 15 minutes stay in memory; older ones are dropped from memory once written. */
const HOT_MS = 15 * 60_000;
const FORMAT = '1';

export interface StoreOptions {
  dir: string;
  /** Silence after which a device counts as offline, ms (devices.offline_after). */
  offlineAfterMs: number;
  /** How long rollups are kept, ms (devices.rollup_retention). */
  rollupRetentionMs: number;
  /** fsync each write; default true. */
  sync?: boolean;
  now?: () => number;
}

type Op = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string };

const bucketKey = (device: string, metric: string, start: number) => `r:${device}\u0000${metric}\u0000${start.toString(16).padStart(12, '0')}`;

export class DeviceStateStore {
  private readonly devices = new Map<string, DeviceRecord>();
  private readonly dedup = new Map<string, SourceDedup>();
  /** (source, seq) of batches applied in memory whose write is not yet durable → that write. */
  private readonly inflight = new Map<string, Promise<void>>();
  private sortedIds: string[] | null = null;
  private memory: Promise<unknown> = Promise.resolve();
  private queue: { ops: Op[]; resolve: () => void; reject: (e: Error) => void; undo: () => void }[] = [];
  private writing = false;
  private generation = 1;
  private readonly openedAt: number;
  private onlineCountValue = 0;
  private cameOnline: string[] = [];
  private lastEvict = 0;
  /** Writes issued (for tests: group commit must keep this far below the number of batches). */
  writes = 0;
  private closed = false;

  private constructor(private readonly db: ClassicLevel<string, Uint8Array>, private readonly opts: Required<StoreOptions>) {
    this.openedAt = opts.now();
  }

  static async open(options: StoreOptions): Promise<DeviceStateStore> {
    const opts: Required<StoreOptions> = { sync: true, now: Date.now, ...options };
    mkdirSync(opts.dir, { recursive: true });
    const db = new ClassicLevel<string, Uint8Array>(opts.dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
    await db.open();
    const format = await db.get('meta:format', { valueEncoding: 'utf8' } as never) as unknown as string | undefined;
    if (format !== undefined && format !== FORMAT) {
      await db.close();
      throw new Error(`state at ${opts.dir} has format ${format}; this node reads format ${FORMAT}`);
    }
    if (format === undefined) await db.put('meta:format', FORMAT as never, { valueEncoding: 'utf8' } as never);
    const store = new DeviceStateStore(db, opts);
    for await (const [k, v] of db.iterator({ gte: 's:', lt: 's;' })) store.devices.set(k.slice(2), DeviceRecord.decode(k.slice(2), v));
    for await (const [k, v] of db.iterator({ gte: 'd:', lt: 'd;' })) store.dedup.set(k.slice(2), SourceDedup.decode(v));
    const now = opts.now();
    for (const r of store.devices.values()) {
      r.online = now - r.lastSeen < opts.offlineAfterMs;
      if (r.online) store.onlineCountValue++;
    }
    store.lastEvict = now;
    return store;
  }

  get deviceCount(): number {
    return this.devices.size;
  }

  get onlineCount(): number {
    return this.onlineCountValue;
  }

  /**
   * Applies one batch (all of it or, for a (source, seq) seen before, none of it) and resolves when its effect is
   * durable. A duplicate of a batch whose write is still in flight waits for that write.
   */
  apply(batch: DeviceData[], dedup: { source: string; seq: number } | null): Promise<{ duplicate: boolean; points: number; readings: number }> {
    if (this.closed) return Promise.reject(new Error('state store is closed'));
    const run = this.memory.then(() => this.applyInMemory(batch, dedup));
    this.memory = run.catch(() => undefined);
    return run.then(async (r) => {
      await r.durable;
      return { duplicate: r.duplicate, points: r.points, readings: r.readings };
    });
  }

  private async applyInMemory(batch: DeviceData[], dedup: { source: string; seq: number } | null) {
    const dedupKey = dedup ? `${dedup.source}\u0000${dedup.seq}` : '';
    if (dedup) {
      const pending = this.inflight.get(dedupKey);
      if (pending) return { duplicate: true, points: 0, readings: 0, durable: pending };
      if (this.dedup.get(dedup.source)?.has(dedup.seq)) return { duplicate: true, points: 0, readings: 0, durable: Promise.resolve() };
    }
    await this.loadColdBuckets(batch);
    const now = this.opts.now();
    const gen = this.generation;
    const ops: Op[] = [];
    const dirty = new Set<Bucket>();
    let points = 0;
    let readings = 0;
    for (const d of batch) {
      let rec = this.devices.get(d.deviceId);
      if (rec === undefined) {
        rec = new DeviceRecord(d.deviceId);
        this.devices.set(d.deviceId, rec);
        this.sortedIds = null;
      }
      rec.lastSeen = now;
      if (!rec.online) {
        rec.online = true;
        this.onlineCountValue++;
        this.cameOnline.push(rec.id);
      }
      // Readings by time: a point belongs to the reading of the same ts; a duplicate reading's points are skipped.
      const dupAt = new Map<number, boolean>();
      for (let i = 0; i < d.seq.length; i++) {
        const isNew = rec.tracker.observe(d.seq[i]);
        if (isNew) readings++;
        dupAt.set(d.seqTs[i], !isNew && dupAt.get(d.seqTs[i]) !== false);
      }
      let unsequenced: Set<number> | null = null;
      for (let i = 0; i < d.metric.length; i++) {
        const ts = d.ts[i];
        const dup = dupAt.get(ts);
        if (dup === true) continue;
        if (dup === undefined) (unsequenced ??= new Set()).add(ts);
        const metric = d.metric[i];
        const value = d.value[i];
        const latest = rec.latest.get(metric);
        if (latest === undefined) rec.latest.set(metric, { value, ts });
        else if (ts >= latest.ts) {
          latest.value = value;
          latest.ts = ts;
        }
        let byStart = rec.buckets.get(metric);
        if (byStart === undefined) rec.buckets.set(metric, (byStart = new Map()));
        const start = bucketStart(ts);
        let b = byStart.get(start);
        if (b === undefined) byStart.set(start, (b = new Bucket(bucketKey(d.deviceId, metric, start), start, newBucket())));
        addPoint(b.v, value, ts);
        b.pending = gen;
        dirty.add(b);
        points++;
      }
      if (unsequenced !== null) {
        rec.tracker.counts.received += unsequenced.size;
        readings += unsequenced.size;
      }
      ops.push({ type: 'put', key: `s:${d.deviceId}`, value: rec.encode() });
    }
    for (const b of dirty) ops.push({ type: 'put', key: b.key, value: new Uint8Array(b.v.buffer.slice(0)) });
    let undo = () => {};
    if (dedup) {
      let sd = this.dedup.get(dedup.source);
      if (sd === undefined) this.dedup.set(dedup.source, (sd = new SourceDedup()));
      sd.add(dedup.seq);
      ops.push({ type: 'put', key: `d:${dedup.source}`, value: sd.encode() });
      // A write that fails must not leave the batch marked applied: the agent's retry has to apply it.
      const marks = sd;
      undo = () => marks.remove(dedup.seq);
    }
    const durable = this.commit(ops, undo);
    if (dedup) {
      this.inflight.set(dedupKey, durable.catch(() => undefined));
      void durable.then(() => this.inflight.delete(dedupKey), () => this.inflight.delete(dedupKey));
    }
    return { duplicate: false, points, readings, durable };
  }

  /** Buckets a batch touches that are not in memory but may be on disk (older than HOT_MS, or from before open). */
  private async loadColdBuckets(batch: DeviceData[]): Promise<void> {
    const hotFrom = this.opts.now() - HOT_MS;
    for (const d of batch) {
      const rec = this.devices.get(d.deviceId);
      if (rec === undefined && !(await this.hasAnyBucket(d.deviceId))) continue;
      for (let i = 0; i < d.metric.length; i++) {
        const start = bucketStart(d.ts[i]);
        if (start >= hotFrom && start >= bucketStart(this.openedAt)) continue;
        if (rec?.buckets.get(d.metric[i])?.has(start)) continue;
        const key = bucketKey(d.deviceId, d.metric[i], start);
        const v = await this.db.get(key);
        if (v === undefined) continue;
        const target = rec ?? this.devices.get(d.deviceId);
        if (target === undefined) continue;
        let byStart = target.buckets.get(d.metric[i]);
        if (byStart === undefined) target.buckets.set(d.metric[i], (byStart = new Map()));
        byStart.set(start, new Bucket(key, start, new Float64Array(new Uint8Array(v).buffer)));
      }
    }
  }

  private async hasAnyBucket(deviceId: string): Promise<boolean> {
    for await (const _ of this.db.keys({ gte: `r:${deviceId}\u0000`, lt: `r:${deviceId}\u0001`, limit: 1 })) return true;
    return false;
  }

  private commit(ops: Op[], undo: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ ops, resolve, reject, undo });
      this.kick();
    });
  }

  private kick(): void {
    if (this.writing || this.queue.length === 0) return;
    const q = this.queue;
    this.queue = [];
    this.writing = true;
    const gen = this.generation++;
    const ops = q.length === 1 ? q[0].ops : q.flatMap((x) => x.ops);
    this.writes++;
    this.db.batch(ops as never, { sync: this.opts.sync }).then(
      () => {
        for (const x of q) x.resolve();
        this.releaseGeneration(gen);
      },
      (err: Error) => {
        for (const x of q) {
          x.undo();
          x.reject(err);
        }
      },
    ).finally(() => {
      this.writing = false;
      this.kick();
    });
  }

  /** Buckets whose last change was in generation ≤ gen are on disk now. */
  private releaseGeneration(gen: number): void {
    this.releasedUpTo = Math.max(this.releasedUpTo, gen);
  }

  private releasedUpTo = 0;

  /** Drops rollup buckets older than HOT_MS from memory once they are on disk. */
  evictCold(): void {
    const hotFrom = this.opts.now() - HOT_MS;
    for (const rec of this.devices.values()) {
      for (const [metric, byStart] of rec.buckets) {
        for (const [start, b] of byStart) if (start < hotFrom && b.pending <= this.releasedUpTo) byStart.delete(start);
        if (byStart.size === 0) rec.buckets.delete(metric);
      }
    }
  }

  get(id: string): DeviceView | undefined {
    const r = this.devices.get(id);
    if (r === undefined) return undefined;
    return {
      id, online: this.opts.now() - r.lastSeen < this.opts.offlineAfterMs, lastSeen: r.lastSeen,
      latest: Object.fromEntries([...r.latest].map(([k, v]) => [k, { value: v.value, ts: v.ts }])),
      counts: { ...r.tracker.counts },
    };
  }

  list(opts: { online?: boolean; limit: number; cursor?: string }): { devices: { id: string; online: boolean; lastSeen: number }[]; next: string | null } {
    const ids = (this.sortedIds ??= [...this.devices.keys()].sort());
    let i = 0;
    if (opts.cursor !== undefined) {
      let lo = 0;
      let hi = ids.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (ids[mid] <= opts.cursor) lo = mid + 1;
        else hi = mid;
      }
      i = lo;
    }
    const now = this.opts.now();
    const out: { id: string; online: boolean; lastSeen: number }[] = [];
    for (; i < ids.length && out.length < opts.limit; i++) {
      const r = this.devices.get(ids[i])!;
      const online = now - r.lastSeen < this.opts.offlineAfterMs;
      if (opts.online !== undefined && online !== opts.online) continue;
      out.push({ id: r.id, online, lastSeen: r.lastSeen });
    }
    // More may remain when the page is full and ids are left (a filter may still find none: the next page is empty).
    const next = out.length === opts.limit && i < ids.length ? out[out.length - 1].id : null;
    return { devices: out, next };
  }

  /** Rollups of one metric in [fromMs, toMs), oldest first; memory wins over disk for buckets not yet written. */
  async series(id: string, metric: string, fromMs: number, toMs: number): Promise<RollupPoint[]> {
    const merged = new Map<number, Float64Array>();
    const from = bucketStart(fromMs);
    for await (const [k, v] of this.db.iterator({ gte: bucketKey(id, metric, Math.max(0, from)), lt: bucketKey(id, metric, Math.max(0, toMs)) })) {
      const start = parseInt(k.slice(k.lastIndexOf('\u0000') + 1), 16);
      merged.set(start, new Float64Array(new Uint8Array(v).buffer));
    }
    for (const [start, b] of this.devices.get(id)?.buckets.get(metric) ?? []) if (start >= from && start < toMs) merged.set(start, b.v);
    return [...merged].sort((a, b) => a[0] - b[0]).filter(([, v]) => v[3] > 0)
      .map(([start, v]) => ({ start, min: v[0], max: v[1], sum: v[2], count: v[3], last: v[4] }));
  }

  /** Devices that went offline or came back since the last call (the node emits events and metrics for them). */
  sweepOnline(): { wentOffline: string[]; wentOnline: string[] } {
    const now = this.opts.now();
    const wentOffline: string[] = [];
    for (const r of this.devices.values()) {
      if (r.online && now - r.lastSeen >= this.opts.offlineAfterMs) {
        r.online = false;
        this.onlineCountValue--;
        wentOffline.push(r.id);
      }
    }
    const wentOnline = this.cameOnline;
    this.cameOnline = [];
    if (now - this.lastEvict > 60_000) {
      this.lastEvict = now;
      this.evictCold();
    }
    return { wentOffline, wentOnline };
  }

  /** Deletes rollups older than the retention; returns how many buckets went. */
  async pruneExpired(nowMs: number): Promise<number> {
    const cutoff = bucketStart(nowMs - this.opts.rollupRetentionMs);
    let ops: Op[] = [];
    let n = 0;
    for await (const k of this.db.keys({ gte: 'r:', lt: 'r;' })) {
      const start = parseInt(k.slice(k.lastIndexOf('\u0000') + 1), 16);
      if (start < cutoff) {
        ops.push({ type: 'del', key: k });
        n++;
        if (ops.length >= 1000) {
          await this.db.batch(ops as never);
          ops = [];
        }
      }
    }
    if (ops.length) await this.db.batch(ops as never);
    this.evictCold();
    return n;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.memory.catch(() => undefined);
    while (this.writing || this.queue.length) await new Promise((r) => setTimeout(r, 5));
    await this.db.close();
  }
}

export { BUCKET_MS };
