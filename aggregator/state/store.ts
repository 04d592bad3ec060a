import { createHash } from 'node:crypto';
import { DeviceTenants, withoutDevices } from '../tenants/device-tenants.js';
import { openStateDb, type Db } from './db.js';
import { BatchApplier } from '../device/apply.js';
import { Committer } from './commit.js';
import { SourceDedup } from '../device/dedup.js';
import { Device } from '../device/device-record.js';
import { MAX_MINUTE } from '../device/rollups.js';
import { loadState, readBuckets, storedKeys } from './reads.js';
import { bucketRanges, mergeTierBuckets, readTierBuckets, type Tier } from './tiers.js';
import { StoreRollups } from './rollup-tiers.js';
import { markApplied } from './batch-marks.js';
import { SortedIds } from './sorted.js';
import { deviceView, listPage, totalsOf, type Totals } from './views.js';
import { decodeTransfer, encodeMergeHashes, encodeRecord, encodeTransfer } from './transfer.js';
import type { ApplyResult, BatchId, DeviceList, DeviceStateOptions, DeviceView, SweepResult } from './types.js';
import type { DeviceData, RollupPoint } from '../device/types.js';
import type { ExportItem } from '../export/queue.js';
import { StoreExports } from '../export/store-exports.js';
import { EventLog, eventRange, readEvents, type StoredEvent } from './events.js';
import { Signal } from '../../protocol/otlp/signal.js';
import { StoreRecovery } from './recovery.js';

/**
 * An aggregator node's per-device state (aggregator/README.md "What a node keeps per device"), durable in LevelDB
 * (its layout: db.ts).
 *
 * Every change is one atomic, fsync'd LevelDB batch (commit.ts: group commit, one write in flight, each caller
 * answered when the write carrying its change is durable). A batch's dedup mark lands in the same write as its
 * effect, so a retry after a lost ack is recognised across restarts. A failed read or write: recovery.ts.
 */
/** Export hashes remembered per device (a device handed back and forth keeps the newest). */
const MERGES_KEPT = 8;

export class DeviceStateStore {
  private devices = new Map<string, Device>();
  /** Device ids, sorted on demand for list(). */
  private readonly ids = new SortedIds();
  private sources = new Map<string, SourceDedup>();
  /** Per device, hashes of the exports merged into it (h: keys), newest last. */
  private merged = new Map<string, number[]>();
  /** Devices whose data arrived while they were offline (or new) since the last sweep. */
  private cameOnline: string[] = [];
  private readonly commit: Committer;
  /** The export queues' side of the store (export/store-exports.ts). */
  readonly exports: StoreExports;
  private readonly applier: BatchApplier;
  private readonly eventLog = new EventLog();
  private readonly tenants: DeviceTenants;
  private readonly now: () => number;
  private readonly recovery: StoreRecovery;
  private readonly rollups: StoreRollups;
  private closed = false;
  /** Readings newly counted since open (for readings per second). */
  readingsApplied = 0;

  private constructor(
    private db: Db,
    private readonly opts: DeviceStateOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.commit = new Committer(db, opts.sync ?? true, (e) => this.fail(e));
    this.recovery = new StoreRecovery({
      commit: this.commit,
      dir: opts.dir,
      closed: () => this.closed,
      closeDb: () => this.db.close(),
      reload: async (reopened) => {
        this.db = reopened;
        await this.load();
      },
      onReopenFailure: opts.onReopenFailure,
    });
    this.applier = new BatchApplier(this.commit, opts.maxMetrics);
    this.tenants = new DeviceTenants(() => this.devices.values(), opts.deviceLimit, opts.onTenantRefused);
    this.rollups = new StoreRollups({
      source: () => ({ db: this.db, commit: this.commit, tiers: this.tiers }),
      ready: () => this.ready(),
      device: (id) => this.devices.get(id),
      devices: () => this.devices.values(),
      closed: () => this.closed,
      minuteRetentionMs: opts.rollupRetentionMs,
    });
    this.commit.rollupExport = opts.rollups ?? null;
    this.exports = new StoreExports({
      commit: this.commit,
      db: () => this.db,
      ready: () => this.ready(),
      devices: () => this.devices.values(),
      queues: opts.exports,
      rollups: opts.rollups,
    });
  }

  static async open(opts: DeviceStateOptions): Promise<DeviceStateStore> {
    const db = await openStateDb(opts.dir);
    const store = new DeviceStateStore(db, opts);
    await store.load();
    return store;
  }

  /** LevelDB writes done so far (group commit keeps this far below the number of batches applied). */
  get writes(): number {
    return this.commit.writes;
  }

  get deviceCount(): number {
    return this.devices.size;
  }

  get onlineCount(): number {
    return this.totals().online;
  }

  /**
   * Applies one batch to memory at once and resolves when its whole effect is durable. A batch whose `dedup`
   * (source, seq) was applied before changes nothing and resolves `{ duplicate: true }` once the write holding the
   * first copy is durable. Devices applied before as parts of it, or refused (another tenant's), are left out.
   */
  apply(batch: DeviceData[], dedup: BatchId | null, exported?: ExportItem): Promise<ApplyResult> {
    if (this.closed) return Promise.reject(new Error('device state store is closed'));
    const r = this.recovery;
    if (r.broken) return Promise.reject(r.broken);
    if (r.recovering) return r.recovering.then(() => this.apply(batch, dedup, exported));
    const g = this.commit.pending;
    try {
      let refused: Set<string> | null = null;
      if (dedup !== null) {
        const marked = markApplied(this.sources, dedup, this.opts.onNewBuffer, () => batch.map((d) => d.deviceId));
        if (marked === null) return this.commit.barrier().then(() => ({ duplicate: true, points: 0, readings: 0 }));
        g.sources.set(dedup.source, marked.src);
        refused = marked.skip;
      }
      const now = this.now();
      const ap = this.applier;
      ap.points = 0;
      ap.readings = 0;
      for (const d of batch) {
        if (refused?.has(d.deviceId)) continue;
        const known = this.devices.get(d.deviceId);
        if (this.tenants.refuses(known, d)) {
          (refused ??= new Set()).add(d.deviceId);
          continue;
        }
        const was = known?.tenant;
        const dev = known ?? this.device(d.deviceId);
        if (dev === null) continue;
        dev.lastSeen = now;
        if (!dev.online) {
          dev.online = true;
          this.cameOnline.push(dev.id);
        }
        g.devices.add(dev);
        if (d.resource) dev.setResource(d.resource);
        if (dev.tenant !== was) this.tenants.moved(was, dev.tenant);
        ap.applyDevice(dev, d);
      }
      if (ap.dropped > 0) {
        this.opts.onMetricsDropped?.(ap.dropped, ap.droppedDevice);
        ap.dropped = 0;
      }
      // Data left out goes nowhere: not exported, streamed or kept as events (again).
      if (refused !== null && exported !== undefined) exported = withoutDevices(exported, refused);
      // The batch's export copy lands in the same write as its effect and its dedup mark: never one without the other.
      if (exported !== undefined) this.opts.exports?.enqueue(g, exported);
      // So do its events (a logs batch), for GET /v1/devices/{id}/events.
      if (exported?.signal === Signal.LOGS) {
        const ids = new Set(batch.map((d) => d.deviceId));
        const taken = (id: string) => ids.has(id) && refused?.has(id) !== true && this.devices.has(id);
        this.eventLog.add(g, exported.otlp, taken, now);
      }
      // What the live stream shows is what was applied: never data left out.
      const applied = refused === null ? batch : batch.filter((d) => !refused.has(d.deviceId));
      const result: ApplyResult = { duplicate: false, points: ap.points, readings: ap.readings };
      this.readingsApplied += ap.readings;
      const durable = this.opts.onDurable;
      const done = () => {
        durable?.(applied, exported);
        this.eventLog.trimDue(() => this.db, this.commit);
        return result;
      };
      if (g.empty) return this.commit.barrier().then(done);
      this.commit.schedule();
      return g.done().then(done);
    } catch (e) {
      // Memory may hold half of the batch: answer everyone waiting with the error and reload what is durable.
      this.fail(e as Error);
      return Promise.reject(e);
    }
  }

  /** Every device this node holds (its own, and any not handed off yet), in no particular order. */
  eachDevice(): IterableIterator<Device> {
    return this.devices.values();
  }

  /** Sums of every device's counts, and how many devices are online. */
  totals(): Totals {
    return totalsOf(this.devices.values(), this.now(), this.opts.offlineAfterMs);
  }

  /** The tenant of a device this node holds ('' = none or unknown). */
  tenantOf(id: string): string {
    return this.devices.get(id)?.tenant ?? '';
  }

  get(id: string): DeviceView | undefined {
    const dev = this.devices.get(id);
    return dev && deviceView(dev, this.online(dev));
  }

  /** Devices ordered by id, after `cursor` (exclusive); `next` is the page's last id when more (matching) remain. */
  list(opts: { online?: boolean; limit: number; cursor?: string; match?: string; tenant?: string }): DeviceList {
    const deviceOf = (id: string) => this.devices.get(id)!;
    return listPage(this.ids.all(), deviceOf, (dev) => this.online(dev), opts);
  }

  /** One metric's rollups over [fromMs, toMs) at `resolutionMin`, oldest first (rollup-tiers.ts). */
  series(deviceId: string, metric: string, fromMs: number, toMs: number, resolutionMin = 1): Promise<RollupPoint[]> {
    return this.rollups.series(deviceId, metric, fromMs, toMs, resolutionMin);
  }

  /** The resolution (minutes per point) a series over [fromMs, toMs) is answered at (rollup-tiers.ts). */
  resolutionFor(deviceId: string, metric: string, fromMs: number, toMs: number, atLeastMin = 1): Promise<number> {
    return this.rollups.resolutionFor(deviceId, metric, fromMs, toMs, atLeastMin);
  }

  /** Coarser rollup tiers kept (devices.hourly_retention, devices.daily_retention), finest first. */
  private get tiers(): readonly Tier[] {
    return this.opts.tiers ?? [];
  }

  /** A device's newest `limit` events, newest first (see events.ts). */
  async events(deviceId: string, limit: number): Promise<StoredEvent[]> {
    await this.ready();
    return readEvents(this.db, deviceId, limit);
  }

  /**
   * Devices that went offline, and that came back (or appeared), since the last sweep; the owner calls this every
   * second. A device comes online the moment its data arrives and goes offline at the first sweep that finds it
   * silent for offlineAfterMs, so a device that arrived and fell silent between two sweeps is in both lists.
   */
  sweepOnline(): SweepResult {
    const wentOnline = this.cameOnline.filter((id) => this.devices.has(id));
    this.cameOnline = [];
    const wentOffline: string[] = [];
    const now = this.now();
    for (const dev of this.devices.values()) {
      const online = now - dev.lastSeen < this.opts.offlineAfterMs;
      if (online === dev.online) continue;
      dev.online = online;
      if (online)
        wentOnline.push(dev.id); // state merged in from another node
      else wentOffline.push(dev.id);
    }
    return { wentOffline, wentOnline };
  }

  /** Rolls expired rollup buckets down the tiers and deletes what the last lets go, as of now. */
  prune(): Promise<number> {
    return this.pruneExpired(this.now());
  }

  /** Rolls buckets expired as of `nowMs` down the tiers (rollup-tiers.ts); joins a compaction under way. */
  pruneExpired(nowMs: number): Promise<number> {
    return this.rollups.compact(nowMs);
  }

  /** The device's full state (record and every rollup bucket) as a versioned value for mergeDevice on another node. */
  async exportDevice(id: string): Promise<Uint8Array | null> {
    await this.ready();
    const dev = this.devices.get(id);
    if (dev === undefined) return null;
    // Record and buckets are taken at the same moment: readBuckets() copies memory and opens its LevelDB snapshot
    // before its first await.
    const record = encodeRecord(dev);
    // Not while compaction moves buckets between tiers: one could be read in both, or in neither.
    await this.rollups.settled();
    const buckets = await readBuckets(this.db, this.commit, undefined, id, undefined, 0, MAX_MINUTE);
    buckets.push(...(await readTierBuckets(this.db, this.commit, id, this.tiers)));
    return encodeTransfer(id, record, buckets);
  }

  /**
   * Merges a device's exported state into this node's (creating the device if new); resolves once durable.
   * Last seen is the later; latest values the newer by ts; rollup buckets merge min/max/sum/count and last by ts; the
   * seq trackers merge as SeqTracker.merge documents (exact while each side's seqs span less than its window).
   * Readings both nodes applied are counted once received and once duplicate, but their points are in both sides'
   * rollups and count twice there. The same export merged again (a handoff resent) changes nothing.
   */
  async mergeDevice(bytes: Uint8Array): Promise<void> {
    await this.ready();
    const { device: inc, buckets } = decodeTransfer(bytes);
    // A handoff whose reply was lost is sent again with the same bytes (the sender no longer owns the device, so its
    // state does not change): merging it twice would count its rollups twice. The export's hash lands in the same
    // write as the merge.
    const hash = createHash('sha256').update(bytes).digest().readUIntBE(0, 6);
    const seen = this.merged.get(inc.id) ?? [];
    if (seen.includes(hash)) return this.commit.barrier();
    const dev = this.device(inc.id);
    if (dev === null) throw new Error(`device id ${JSON.stringify(inc.id)} cannot be stored (empty or holds \\0)`);
    const hashes = [...seen, hash].slice(-MERGES_KEPT);
    this.merged.set(inc.id, hashes);
    this.commit.pending.puts.set(`h:${inc.id}`, encodeMergeHashes(hashes));
    // Seq accounting, last seen and latest values merge in the record; head buckets join the stored ones.
    const minutes = buckets.filter((x) => (x.resolutionMin ?? 1) === 1);
    const all = [...minutes, ...dev.mergeRecord(inc)].sort((a, b) => a.minute - b.minute);
    this.tenants.reset();
    for (const x of all) this.commit.mergeInto(dev, x.metric, x.minute, x.b);
    mergeTierBuckets(this.commit, inc.id, buckets, this.tiers);
    const g = this.commit.pending;
    g.devices.add(dev);
    this.commit.schedule();
    await g.done();
  }

  /** Deletes a device and all its rollups (after it moved to another node); resolves once durable. */
  async deleteDevice(id: string): Promise<boolean> {
    await this.ready();
    const dev = this.devices.get(id);
    const ranges = bucketRanges(id, this.tiers);
    const g = this.commit.pending;
    for (const { gte, lt } of ranges) for (const k of this.commit.forget(gte, lt)) g.deletes.add(k);
    if (dev !== undefined) {
      dev.deleted = true;
      this.devices.delete(id);
      this.tenants.reset();
      g.devices.delete(dev);
      this.ids.remove(id);
    }
    g.deletes.add(`s:${id}`);
    this.eventLog.forget(id);
    // Keys written meanwhile for a device of the same id (data still arriving) are kept: they are newer.
    const ev = eventRange(id);
    const stored = await storedKeys(this.db, ev.gte, ev.lt);
    for (const { gte, lt } of ranges) stored.push(...(await storedKeys(this.db, gte, lt)));
    this.commit.deleteStored(stored);
    await this.commit.barrier();
    return dev !== undefined || stored.length > 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.recovery.recovering?.catch(() => undefined);
    await this.rollups.settled();
    await this.commit.idle();
    await this.db.close();
  }

  /** The device of an id, created when new; null for an id that cannot be a key (empty, holds \0). */
  private device(id: string): Device | null {
    let dev = this.devices.get(id);
    if (dev !== undefined) return dev;
    if (typeof id !== 'string' || id === '' || id.includes('\u0000')) return null;
    this.devices.set(id, (dev = new Device(id)));
    this.ids.add(id);
    return dev;
  }

  private online(dev: Device): boolean {
    return this.now() - dev.lastSeen < this.opts.offlineAfterMs;
  }

  /**
   * Why the store cannot take data now (for /readyz), or null: unusable, reloading after a failed write, or its last
   * write failed and none has succeeded since (a full disk, a read-only volume).
   */
  unhealthy(): string | null {
    return this.recovery.unhealthy();
  }

  /** Reads or writes that failed (each answered its callers with the error and reloaded memory). */
  get failures(): number {
    return this.recovery.failures;
  }

  private ready(): Promise<void> {
    return this.recovery.ready();
  }

  private fail(err: Error): void {
    this.recovery.fail(err);
  }

  /** Reads every device record and dedup record into memory (at open, and after a failure). */
  private async load(): Promise<void> {
    const now = this.now();
    const { devices, sources, merged } = await loadState(this.db);
    await this.opts.exports?.load(this.db);
    this.merged = merged;
    for (const dev of devices.values()) dev.online = now - dev.lastSeen < this.opts.offlineAfterMs;
    this.devices = devices;
    this.sources = sources;
    this.cameOnline = [];
    this.ids.reset([...devices.keys()]); // LevelDB order: sorted as UTF-8; all() sorts again as JS strings
    this.tenants.reset();
  }
}
