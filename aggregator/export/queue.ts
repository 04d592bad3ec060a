import { gzipSync } from 'node:zlib';
import { Signal } from '../../protocol/otlp/signal.js';
import { Compression, decompress, ZstdCompressor } from '../../protocol/compression.js';
import { countItems } from '../../protocol/otlp/split.js';
import type { Group } from '../state/group.js';
import type { Db } from '../state/db.js';

/**
 * The durable export queue of one exporter, in the node's state LevelDB:
 *
 *   x:<exporter>\0<seq, 12 hex>   one request: [1][signal][points u32][queued at f64 ms][compression][bytes]
 *   xm:<exporter>                    drop counters (JSON), rewritten with every change to them
 *
 * Entries are put in the same group commit (state/group.ts) as the state change of the data they carry, so an
 * acknowledged point is in the queue whenever it is in state — across kill -9 too. The exporter reads entries oldest
 * first, and deletes them (again through the group commit) once the backend took them or refused them for good.
 * Past `maxBytes` the oldest entries are deleted in the same write that adds the new one, and counted as dropped.
 */

/** What is queued: an uncompressed Export*ServiceRequest, or bytes already compressed as a source sent them. */
export interface ExportItem {
  signal: Signal;
  otlp: Uint8Array;
  /** Data points, log records or spans it holds; -1 = not counted yet (counted when queued). */
  points: number;
  /** The same request compressed (e.g. an agent's zstd batch as received): stored as is, saving a compression. */
  compressed?: { bytes: Uint8Array; compression: Compression };
}

export interface QueueEntry {
  readonly seq: number;
  readonly key: string;
  readonly signal: Signal;
  readonly points: number;
  readonly bytes: number;
  readonly enqueuedAt: number;
  /** How the stored request is compressed. */
  readonly compression: Compression;
  /** Written to LevelDB (the exporter sends only durable entries). */
  durable: boolean;
  inFlight: boolean;
  /** The stored value while it is kept in memory. */
  value: Uint8Array | null;
}

export type DropReason = 'queue_full' | 'rejected';

export interface DropCounts {
  queue_full: { batches: number; points: number };
  rejected: { batches: number; points: number };
}

const VERSION = 1;
const HEADER = 15;
/** Values kept in memory per queue for sending without a read (the rest is read back from LevelDB). */
const CACHE_BYTES = 32 << 20;

export const queuePrefix = (name: string) => `x:${name}\u0000`;

export class ExportQueue {
  /** Entries by seq, oldest first (Map keeps insertion order and seqs only grow). */
  private readonly entries = new Map<number, QueueEntry>();
  private nextSeq = 1;
  bytes = 0;
  points = 0;
  private cached = 0;
  dropped: DropCounts = zeroDrops();
  /** Called when entries became durable (the exporter waits on it). */
  onDurable: () => void = () => {};

  constructor(
    readonly name: string,
    /** raw: requests as received; rollup: closed 1-minute buckets (export/rollup.ts). */
    readonly mode: 'raw' | 'rollup',
    readonly maxBytes: number,
    private readonly signals: ReadonlySet<Signal>,
    private readonly onDropped: (reason: DropReason, batches: number, points: number) => void,
  ) {}

  accepts(signal: Signal): boolean {
    return this.signals.has(signal);
  }

  get length(): number {
    return this.entries.size;
  }

  /** Adds a stored value to the group's write; drops the oldest entries past the cap in the same write. */
  enqueue(g: Group, signal: Signal, points: number, compression: Compression, bytes: Uint8Array): void {
    const seq = this.nextSeq++;
    const key = `${queuePrefix(this.name)}${seq.toString(16).padStart(12, '0')}`;
    const value = new Uint8Array(HEADER + bytes.length);
    const view = new DataView(value.buffer);
    value[0] = VERSION;
    value[1] = signal;
    view.setUint32(2, points, true);
    view.setFloat64(6, Date.now(), true);
    value[14] = compression;
    value.set(bytes, HEADER);
    const keep = this.cached + value.length <= CACHE_BYTES;
    const e: QueueEntry = {
      seq,
      key,
      signal,
      points,
      bytes: value.length,
      enqueuedAt: Date.now(),
      compression,
      durable: false,
      inFlight: false,
      value: keep ? value : null,
    };
    if (keep) this.cached += value.length;
    this.entries.set(seq, e);
    this.bytes += e.bytes;
    this.points += points;
    g.puts.set(key, value);
    g.done().then(
      () => {
        e.durable = true;
        this.onDurable();
      },
      () => undefined, // the store reloads this queue from LevelDB after a failed write
    );
    if (this.bytes > this.maxBytes) this.dropOldest(g);
  }

  private dropOldest(g: Group): void {
    let batches = 0;
    let points = 0;
    // Entries being sent go last: dropping one that then arrives would count a delivered point as lost.
    for (const pass of [false, true]) {
      for (const e of this.entries.values()) {
        if (this.bytes <= this.maxBytes) break;
        if (e.inFlight !== pass) continue;
        this.remove(e, g);
        batches++;
        points += e.points;
      }
    }
    if (batches > 0) this.count(g, 'queue_full', batches, points);
  }

  private remove(e: QueueEntry, g: Group): void {
    if (!this.entries.delete(e.seq)) return;
    this.bytes -= e.bytes;
    this.points -= e.points;
    if (e.value !== null) this.cached -= e.bytes;
    if (g.puts.has(e.key)) g.puts.delete(e.key);
    else g.deletes.add(e.key);
  }

  private count(g: Group, reason: DropReason, batches: number, points: number): void {
    this.dropped[reason].batches += batches;
    this.dropped[reason].points += points;
    g.puts.set(`xm:${this.name}`, new TextEncoder().encode(JSON.stringify(this.dropped)));
    this.onDropped(reason, batches, points);
  }

  /** Durable entries not being sent, oldest first, up to `maxPoints` (at least one) and `maxBytes`. */
  take(maxPoints: number, maxBytes: number): QueueEntry[] {
    const out: QueueEntry[] = [];
    let points = 0;
    let bytes = 0;
    for (const e of this.entries.values()) {
      if (e.inFlight) continue;
      if (!e.durable) break; // keep order: nothing newer goes before it
      if (out.length > 0 && (points + e.points > maxPoints || bytes + e.bytes > maxBytes)) break;
      out.push(e);
      points += e.points;
      bytes += e.bytes;
      e.inFlight = true;
    }
    return out;
  }

  /** Points of durable entries not being sent, and when the oldest of them was queued (0 = none). */
  ready(): { points: number; oldest: number } {
    let points = 0;
    let oldest = 0;
    for (const e of this.entries.values()) {
      if (e.inFlight) continue;
      if (!e.durable) break;
      if (oldest === 0) oldest = e.enqueuedAt;
      points += e.points;
    }
    return { points, oldest };
  }

  /** Enqueue time of the oldest entry (0 = empty). */
  oldestAt(): number {
    for (const e of this.entries.values()) return e.enqueuedAt;
    return 0;
  }

  /**
   * The entries' requests (values not in memory are read from `db`): inflated, or as stored when `stored` (each
   * then compressed as its entry's `compression` says). null for an entry no longer readable.
   */
  async requests(db: Db, entries: readonly QueueEntry[], stored = false): Promise<(Uint8Array | null)[]> {
    const missing = entries.filter((e) => e.value === null);
    const read = missing.length > 0 ? await db.getMany(missing.map((e) => e.key)) : [];
    const byKey = new Map(missing.map((e, i) => [e.key, read[i]]));
    return entries.map((e) => {
      const v = e.value ?? byKey.get(e.key);
      if (v === undefined || v.length < HEADER) return null;
      if (stored) return v.subarray(HEADER);
      try {
        return decompress(v.subarray(HEADER), v[14] as Compression, 256 << 20);
      } catch {
        return null;
      }
    });
  }

  /** The entries left the queue: sent, or refused for good (`rejected`, counted as dropped). */
  settle(g: Group, entries: readonly QueueEntry[], rejected: boolean): void {
    let batches = 0;
    let points = 0;
    for (const e of entries) {
      if (!this.entries.has(e.seq)) continue; // dropped meanwhile, or reloaded
      this.remove(e, g);
      batches++;
      points += e.points;
    }
    if (rejected && batches > 0) this.count(g, 'rejected', batches, points);
  }

  /** The entries go back to waiting (a retry). */
  release(entries: readonly QueueEntry[]): void {
    for (const e of entries) e.inFlight = false;
  }

  /** Reads the queue's entries and counters from LevelDB (at open, and after a failed write). */
  async load(db: Db): Promise<void> {
    this.entries.clear();
    this.bytes = this.points = this.cached = 0;
    const stored = await db.get(`xm:${this.name}`);
    this.dropped = stored ? { ...zeroDrops(), ...JSON.parse(new TextDecoder().decode(stored)) } : zeroDrops();
    const prefix = queuePrefix(this.name);
    let last = 0;
    for await (const [key, v] of db.iterator({ gte: prefix, lt: `x:${this.name}\u0001` })) {
      const seq = parseInt(key.slice(prefix.length), 16);
      if (!(seq > 0) || v.length < HEADER) continue;
      const view = new DataView(v.buffer, v.byteOffset, v.byteLength);
      const e: QueueEntry = {
        seq,
        key,
        signal: v[1] as Signal,
        points: view.getUint32(2, true),
        bytes: v.length,
        enqueuedAt: view.getFloat64(6, true),
        compression: v[14] as Compression,
        durable: true,
        inFlight: false,
        value: null,
      };
      this.entries.set(seq, e);
      this.bytes += e.bytes;
      this.points += e.points;
      last = seq;
    }
    this.nextSeq = Math.max(this.nextSeq, last + 1);
  }
}

function zeroDrops(): DropCounts {
  return { queue_full: { batches: 0, points: 0 }, rejected: { batches: 0, points: 0 } };
}

/**
 * The queues of all exporters: an accepted request is compressed once and queued for each exporter that takes its
 * signal. `enqueue` returns how many queues took it (0 = no exporter takes this signal).
 */
export class ExportQueues {
  private readonly zstd = new ZstdCompressor(1);

  /**
   * @param codec how requests that arrive uncompressed are stored: the exporters' own encoding where it is gzip or
   * zstd, so they can send stored bytes as they are (concatenated gzip members or zstd frames are one valid body).
   */
  constructor(
    readonly queues: readonly ExportQueue[],
    private readonly codec: Compression.ZSTD | Compression.GZIP = Compression.ZSTD,
  ) {}

  /** Whether a raw exporter takes this signal (data received is queued for it). */
  takes(signal: Signal): boolean {
    return this.queues.some((q) => q.mode === 'raw' && q.accepts(signal));
  }

  get rollups(): boolean {
    return this.queues.some((q) => q.mode === 'rollup');
  }

  enqueue(g: Group, item: ExportItem, mode: 'raw' | 'rollup' = 'raw'): number {
    const targets = this.queues.filter((q) => q.mode === mode && q.accepts(item.signal));
    if (targets.length === 0) return 0;
    const points = item.points >= 0 ? item.points : countItems(item.signal, item.otlp);
    if (points === 0) return 0;
    const c =
      item.compressed ??
      (this.codec === Compression.GZIP
        ? { compression: Compression.GZIP, bytes: gzipSync(item.otlp, { level: 1 }) }
        : { compression: Compression.ZSTD, bytes: this.zstd.compress(item.otlp) });
    for (const q of targets) q.enqueue(g, item.signal, points, c.compression, c.bytes);
    return targets.length;
  }

  async load(db: Db): Promise<void> {
    for (const q of this.queues) await q.load(db);
  }
}
