import { OtlpEdgeError } from '../../protocol/errors.js';
import { AgentErrorCodes } from '../errors.js';
import { randomInt } from 'node:crypto';
import { ClassicLevel } from 'classic-level';
import { BatchIndex as Index } from './batch-index.js';
import {
  decodeRecord,
  encodeIndex,
  encodePackedRecord,
  encodeRecord,
  FORMAT,
  FORMAT_PACKED,
  type NewBatch,
  type PackedBatch,
  type StoredBatch,
} from './record.js';
import type { AppendResult, BufferOptions, BufferState, BufferStats } from './buffer-types.js';
import { sideStore, type SideStore } from './side-state.js';
import { openBufferDb } from './open-db.js';
import {
  BATCH_PREFIX,
  FORMAT_KEY,
  INDEX_PREFIX,
  key,
  QUARANTINE_PREFIX,
  REASON_PREFIX,
  seqOf,
  STATE_KEY,
} from './keys.js';

/**
 * The agent's durable buffer: OTLP batches in LevelDB (key scheme: keys.ts) under a byte cap, oldest dropped first.
 *
 * Every change is one atomic, fsync'd LevelDB batch: a new batch, the oldest batches it pushes out past the cap,
 * and the counters all land together or not at all, so a kill -9 at any moment leaves a consistent buffer.
 * Sequence numbers are never reused (nextSeq is persisted, not derived from the keys), because the aggregator
 * deduplicates by (agent, seq): a reused seq would be taken for a retry and dropped.
 */

export class CircularBuffer {
  private index = new Index();
  private quarantined = new Index();
  /** Writes are applied one at a time, so the in-memory index always matches what is on disk. */
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Bytes deleted since the last compaction; LevelDB reclaims their space only when it compacts. */
  private deletedSinceCompact = 0;
  /**
   * A write failed: LevelDB's log may hold a torn record, and it keeps appending after a failed append; the next open
   * drops the torn record with whatever follows it in its log block — batches acknowledged after the failure (measured
   * on a full disk). So the next operation first reopens the database (recovery starts a new log) and reloads.
   */
  private suspect = false;
  /** The uplink: batches it is delivering the cap passes over; those the cap drops it must not send. */
  private uplink: { sending(seq: number): boolean; dropping(seqs: readonly number[]): void } | null = null;
  /** Side state receivers keep beside the batches (side-state.ts), written in the same serial order. */
  readonly side: SideStore = sideStore(
    (range) => this.db.iterator(range),
    (ops) => this.serialize(() => this.db.batch(ops as never, { sync: this.opts.sync })),
  );

  private constructor(
    private db: ClassicLevel<string, Uint8Array>,
    private readonly opts: Required<BufferOptions>,
    private state: BufferState,
  ) {}

  static async open(options: BufferOptions): Promise<CircularBuffer> {
    const opts = { sync: true, ...options };
    const db = await openBufferDb(opts);
    const buffer = new CircularBuffer(db, opts, null as unknown as BufferState);
    try {
      await buffer.load();
    } catch (e) {
      await db.close().catch(() => undefined);
      throw e;
    }
    return buffer;
  }

  /** Reads the format, the state and both indexes from the database (at open, and after a reopen). */
  private async load(): Promise<void> {
    const { db, opts } = this;
    const format = (await db.get(FORMAT_KEY, { valueEncoding: 'utf8' } as never)) as unknown as string | undefined;
    if (format !== undefined && format !== String(FORMAT) && format !== String(FORMAT_PACKED)) {
      throw new OtlpEdgeError(
        AgentErrorCodes.BUFFER_FORMAT,
        `buffer at ${opts.dir} has format ${format}; this agent reads formats ${FORMAT} and ${FORMAT_PACKED} (run the agent version that wrote it to send what it holds, or move the directory aside)`,
      );
    }
    const rawState = (await db.get(STATE_KEY, { valueEncoding: 'utf8' } as never)) as unknown as string | undefined;
    const state: BufferState = {
      nextSeq: 1,
      bufferId: 0,
      droppedBatches: 0,
      droppedPoints: 0,
      appendedBatches: 0,
      appendedPoints: 0,
      rejectedBatches: 0,
      rejectedPoints: 0,
      ...(rawState ? JSON.parse(rawState) : {}),
    };
    const index = await Index.read(db.iterator({ gte: INDEX_PREFIX, lt: 'i;' }), seqOf, (v) => {
      const view = new DataView(v.buffer, v.byteOffset, v.byteLength);
      return { size: view.getUint32(0, true), points: view.getUint32(4, true), created: view.getFloat64(9, true) };
    });
    const quarantined = await Index.read(db.iterator({ gte: QUARANTINE_PREFIX, lt: 'x;' }), seqOf, (v, seq) => {
      const r = decodeRecord(seq, v);
      return { size: v.length, points: r.points, created: r.createdMs };
    });
    if (index.length > 0) {
      const last = index.seqs[index.seqs.length - 1];
      if (last >= state.nextSeq) state.nextSeq = last + 1; // a state record older than its batches: never reuse a seq
    }
    // A reopen after a failed write keeps the counters this process advanced and never goes back on a seq.
    if (this.state) state.nextSeq = Math.max(state.nextSeq, this.state.nextSeq);
    if (format === undefined) await db.put(FORMAT_KEY, String(FORMAT) as never, { valueEncoding: 'utf8' } as never);
    if (!state.bufferId) {
      state.bufferId = randomInt(1, 2 ** 48);
      await db.put(STATE_KEY, Buffer.from(JSON.stringify(state)) as never);
    }
    this.state = state;
    this.index = index;
    this.quarantined = quarantined;
  }

  /** Closes and opens the database again after a failed write (see `suspect`), then reloads what it holds. */
  private async reopen(): Promise<void> {
    await this.db.close().catch(() => undefined);
    this.db = await openBufferDb(this.opts);
    await this.load();
    this.suspect = false;
  }

  /** Stores one batch durably (as appendMany); resolves once it is fsync'd: only then may its readings be acked. */
  async append(batch: NewBatch): Promise<AppendResult> {
    return (await this.appendMany([batch]))[0];
  }

  /**
   * Stores several batches in one atomic, fsync'd write (a group commit split by destination), dropping the oldest
   * batches in the same write when the cap would be passed.
   */
  appendMany(batches: readonly NewBatch[]): Promise<AppendResult[]> {
    return this.serialize(async () => {
      const ix = this.index;
      const ops: { type: 'put' | 'del'; key: string; value?: Uint8Array }[] = [];
      const results: AppendResult[] = [];
      const added: { seq: number; size: number; points: number; created: number }[] = [];
      let next: BufferState = { ...this.state };
      // Oldest entries that must go, walked without touching the index until the write has succeeded; batches
      // added earlier in this same write count toward the cap as well. A batch being delivered is passed over: the
      // cap may be exceeded by what is in flight, but what it counts as dropped was never delivered.
      let at = ix.head;
      const dropped: number[] = [];
      let freed = 0;
      let addedBytes = 0;
      for (const batch of batches) {
        const createdMs = batch.createdMs ?? Date.now();
        const record = encodeRecord(batch, createdMs);
        const seq = next.nextSeq;
        let droppedBatches = 0;
        let droppedPoints = 0;
        for (; at < ix.seqs.length && ix.bytes - freed + addedBytes + record.length > this.opts.maxBytes; at++) {
          const i = at;
          if (this.uplink?.sending(ix.seqs[i])) continue;
          dropped.push(ix.seqs[i]);
          ops.push(
            { type: 'del', key: key(BATCH_PREFIX, ix.seqs[i]) },
            { type: 'del', key: key(INDEX_PREFIX, ix.seqs[i]) },
          );
          freed += ix.sizes[i];
          droppedBatches++;
          droppedPoints += ix.points[i];
        }
        next = {
          ...next,
          nextSeq: seq + 1,
          droppedBatches: next.droppedBatches + droppedBatches,
          droppedPoints: next.droppedPoints + droppedPoints,
          appendedBatches: next.appendedBatches + 1,
          appendedPoints: next.appendedPoints + batch.points,
        };
        ops.push(
          { type: 'put', key: key(BATCH_PREFIX, seq), value: record },
          {
            type: 'put',
            key: key(INDEX_PREFIX, seq),
            value: encodeIndex(record.length, batch.points, batch.signal, createdMs),
          },
        );
        addedBytes += record.length;
        added.push({ seq, size: record.length, points: batch.points, created: createdMs });
        results.push({ seq, droppedBatches, droppedPoints });
      }
      ops.push({ type: 'put', key: STATE_KEY, value: Buffer.from(JSON.stringify(next)) });
      if (dropped.length > 0) this.uplink?.dropping(dropped);
      await this.db.batch(ops as never, { sync: this.opts.sync });
      for (const seq of dropped) ix.remove(seq);
      for (const a of added) ix.push(a.seq, a.size, a.points, a.created);
      this.state = next;
      this.deletedSinceCompact += freed;
      return results;
    });
  }

  /**
   * Ties the cap to the uplink: a batch it is `sending` is passed over (the cap may be exceeded by what is in
   * flight), and the batches the cap drops are reported as `dropping` before the write, so none of them is sent
   * after it: what the cap counts as dropped was never delivered.
   */
  attachUplink(uplink: { sending(seq: number): boolean; dropping(seqs: readonly number[]): void }): void {
    this.uplink = uplink;
  }

  /** Deletes batches the uplink has delivered. Unknown seqs are ignored (already dropped by the cap). */
  remove(seqs: readonly number[]): Promise<number> {
    return this.serialize(async () => {
      const ops: { type: 'del'; key: string }[] = [];
      for (const seq of seqs)
        ops.push({ type: 'del', key: key(BATCH_PREFIX, seq) }, { type: 'del', key: key(INDEX_PREFIX, seq) });
      await this.db.batch(ops, { sync: this.opts.sync });
      let removed = 0;
      for (const seq of seqs) {
        const i = this.index.seqs.indexOf(seq, this.index.head);
        if (i >= 0) this.deletedSinceCompact += this.index.sizes[i];
        if (this.index.remove(seq)) removed++;
      }
      return removed;
    });
  }

  /**
   * Moves a batch the receiver rejected out of the send queue into quarantine, in one atomic write with the
   * counters. Quarantine keeps at most 1/16 of the cap; past that its oldest entries are deleted.
   */
  quarantine(seq: number, reason: string): Promise<boolean> {
    return this.serialize(async () => {
      const i = this.index.seqs.indexOf(seq, this.index.head);
      if (i < 0) return false;
      const record = await this.db.get(key(BATCH_PREFIX, seq));
      if (record === undefined) return false;
      const points = this.index.points[i];
      const created = this.index.created[i];
      const ops: { type: 'put' | 'del'; key: string; value?: Uint8Array }[] = [
        { type: 'del', key: key(BATCH_PREFIX, seq) },
        { type: 'del', key: key(INDEX_PREFIX, seq) },
        { type: 'put', key: key(QUARANTINE_PREFIX, seq), value: record },
        { type: 'put', key: key(REASON_PREFIX, seq), value: Buffer.from(reason) },
      ];
      const q = this.quarantined;
      const limit = Math.max(64 * 1024, Math.floor(this.opts.maxBytes / 16));
      let evict = 0;
      let freed = 0;
      while (q.head + evict < q.seqs.length && q.bytes - freed + record.length > limit) {
        const old = q.seqs[q.head + evict];
        ops.push({ type: 'del', key: key(QUARANTINE_PREFIX, old) }, { type: 'del', key: key(REASON_PREFIX, old) });
        freed += q.sizes[q.head + evict];
        evict++;
      }
      const next = {
        ...this.state,
        rejectedBatches: this.state.rejectedBatches + 1,
        rejectedPoints: this.state.rejectedPoints + points,
      };
      ops.push({ type: 'put', key: STATE_KEY, value: Buffer.from(JSON.stringify(next)) });
      await this.db.batch(ops as never, { sync: this.opts.sync });
      this.index.remove(seq);
      for (let e = 0; e < evict; e++) q.shift();
      q.push(seq, record.length, points, created);
      this.state = next;
      return true;
    });
  }

  /**
   * Replaces stored batches — consecutive in the buffer, none packed — by one packed record holding them all (under
   * the first one's seq), in one atomic write. False when they are no longer all there as they were (delivered or
   * dropped meanwhile): nothing changes then.
   */
  pack(batches: readonly StoredBatch[], packed: PackedBatch): Promise<boolean> {
    return this.serialize(async () => {
      const ix = this.index;
      const first = ix.seqs.indexOf(batches[0].seq, ix.head);
      if (first < 0 || batches.some((b, k) => ix.seqs[first + k] !== b.seq)) return false;
      const record = encodePackedRecord(packed);
      const seq = batches[0].seq;
      const index = encodeIndex(record.length, packed.points, packed.signal, packed.createdMs);
      const ops: { type: 'put' | 'del'; key: string; value?: Uint8Array }[] = [
        ...batches
          .slice(1)
          .flatMap((b) => [BATCH_PREFIX, INDEX_PREFIX].map((p) => ({ type: 'del' as const, key: key(p, b.seq) }))),
        { type: 'put', key: key(BATCH_PREFIX, seq), value: record },
        { type: 'put', key: key(INDEX_PREFIX, seq), value: index },
        { type: 'put', key: FORMAT_KEY, value: Buffer.from(String(FORMAT_PACKED)) },
      ];
      await this.db.batch(ops as never, { sync: this.opts.sync });
      let freed = 0;
      for (let k = 0; k < batches.length; k++) freed += ix.sizes[first + k];
      ix.replaceRun(first, batches.length, seq, record.length, packed.points, packed.createdMs);
      this.deletedSinceCompact += freed;
      return true;
    });
  }

  /** Quarantined batches with the reason each was rejected, oldest first. */
  async *rejected(): AsyncGenerator<StoredBatch & { reason: string }> {
    for await (const [k, v] of this.db.iterator({ gte: QUARANTINE_PREFIX, lt: 'x;' })) {
      const seq = seqOf(k);
      const reason = (await this.db.get(key(REASON_PREFIX, seq), { valueEncoding: 'utf8' } as never)) as unknown as
        string | undefined;
      yield { ...decodeRecord(seq, v), reason: reason ?? '' };
    }
  }

  /** Oldest stored batches first, at most `limit`, with `afterSeq` < seq ≤ `upTo`. */
  async read(limit: number, afterSeq = 0, upTo = Infinity): Promise<StoredBatch[]> {
    const out: StoredBatch[] = [];
    const lt = upTo === Infinity ? 'b;' : key(BATCH_PREFIX, upTo + 1);
    for await (const [k, v] of this.db.iterator({ gt: key(BATCH_PREFIX, afterSeq), lt, limit }))
      out.push(decodeRecord(seqOf(k), v));
    return out;
  }

  /** Every stored batch, oldest first (for `buffer dump`). */
  async *entries(): AsyncGenerator<StoredBatch> {
    for await (const [k, v] of this.db.iterator({ gte: BATCH_PREFIX, lt: 'b;' })) yield decodeRecord(seqOf(k), v);
  }

  /** The uplink's low-water mark: every seq below it was delivered, moved aside or dropped, never to be sent again. */
  lowWater(): number {
    const ix = this.index;
    return ix.length > 0 ? ix.seqs[ix.head] : this.state.nextSeq;
  }

  stats(): BufferStats {
    const ix = this.index;
    return {
      ...this.state,
      batches: ix.length,
      bytes: ix.bytes,
      points: ix.totalPoints,
      maxBytes: this.opts.maxBytes,
      oldestSeq: ix.length > 0 ? ix.seqs[ix.head] : null,
      newestSeq: ix.length > 0 ? ix.seqs[ix.seqs.length - 1] : null,
      oldestCreatedMs: ix.length > 0 ? ix.created[ix.head] : null,
      quarantinedBatches: this.quarantined.length,
      quarantinedBytes: this.quarantined.bytes,
    };
  }

  /** Bytes deleted since LevelDB last compacted; the agent compacts when this grows past a fraction of the cap. */
  get reclaimable(): number {
    return this.deletedSinceCompact;
  }

  /** Compacts the whole key range so deleted batches give their disk space back. */
  compact(): Promise<void> {
    return this.serialize(async () => {
      await this.db.compactRange('\u0000', '\u00ff');
      this.deletedSinceCompact = 0;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain.catch(() => undefined);
    await this.db.close();
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('buffer is closed'));
    const guarded = async () => {
      if (this.suspect) await this.reopen();
      try {
        return await fn();
      } catch (e) {
        this.suspect = true;
        throw e;
      }
    };
    const run = this.chain.then(guarded, guarded);
    this.chain = run.catch(() => undefined);
    return run;
  }
}
