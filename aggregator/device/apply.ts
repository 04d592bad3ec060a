import { Device, HEAD, HEAD_MINUTE, LATEST_TS, LATEST_VALUE, SLOT } from './device-record.js';
import { MINUTE_MS } from './rollups.js';
import type { DeviceData } from './types.js';

/** Where rollup changes that leave a device's own record go (the store turns them into `r:` writes). */
export interface RollupSink {
  /** The head bucket of (device, slot), minute `minute`, is being replaced by a newer minute: store it. */
  rolled(dev: Device, slot: number, minute: number): void;
  /** A point for a bucket older than the head. */
  late(dev: Device, slot: number, minute: number, value: number, ts: number): void;
}

/** Readings up to this many per device are matched by a linear scan; more get a Map. */
const LINEAR = 16;

/**
 * Applies one device's data from a batch to its in-memory state: seq accounting, latest values, the head rollup
 * bucket. The hot path of the aggregator, so it allocates nothing per point: scratch arrays are reused, a point finds
 * its reading by ts with a moving hint (OTLP lists a batch's points metric by metric, each in reading order, so the
 * next point's reading is almost always the last one matched or the one after it).
 */
export class BatchApplier {
  /** Points applied and readings counted since the caller last reset them. */
  points = 0;
  readings = 0;
  /** Points dropped because their device already has `maxMetrics` names, and the last such device. */
  dropped = 0;
  droppedDevice = '';
  private accept = new Uint8Array(64);
  private readonly readingAt = new Map<number, number>();
  private readonly unsequenced = new Float64Array(LINEAR);
  private readonly unsequencedSet = new Set<number>();
  private nUnsequenced = 0;

  /** @param maxMetrics distinct metric names kept per device (devices.max_metrics); default unlimited */
  constructor(
    private readonly sink: RollupSink,
    private readonly maxMetrics = Infinity,
  ) {}

  applyDevice(dev: Device, d: DeviceData): void {
    const seqTs = d.seqTs;
    const seqs = d.seq;
    const nr = Math.min(seqTs.length, seqs.length);
    if (this.accept.length < nr) this.accept = new Uint8Array(nr * 2);
    const accept = this.accept;
    const tracker = dev.seq;
    for (let i = 0; i < nr; i++) {
      const s = seqs[i];
      let fresh = true;
      if (Number.isInteger(s) && s >= 0) fresh = tracker.observe(s);
      else tracker.counts.received++; // a seq that is no counter: a reading all the same, just not accountable
      accept[i] = fresh ? 1 : 0;
      if (fresh) this.readings++;
    }
    let shared = false; // some ts carries more than one reading
    if (nr > LINEAR) {
      const at = this.readingAt;
      at.clear();
      for (let i = 0; i < nr; i++) {
        if (at.has(seqTs[i])) shared = true;
        else at.set(seqTs[i], i);
      }
    } else {
      for (let i = 1; i < nr && !shared; i++) for (let j = 0; j < i; j++) if (seqTs[i] === seqTs[j]) shared = true;
    }
    this.nUnsequenced = 0;
    this.unsequencedSet.clear();
    if (shared) {
      this.applyShared(dev, d, nr);
      return;
    }
    const names = d.metric;
    const tss = d.ts;
    const values = d.value;
    const n = Math.min(names.length, tss.length, values.length);
    let hint = 0;
    for (let p = 0; p < n; p++) {
      const ts = tss[p];
      const v = values[p];
      if (!(ts >= 0) || v - v !== 0) continue; // NaN or negative time, NaN or infinite value
      if (nr > 0) {
        let r: number;
        if (seqTs[hint] === ts) r = hint;
        else if (hint + 1 < nr && seqTs[hint + 1] === ts) r = hint + 1;
        else r = this.findReading(seqTs, nr, ts);
        if (r >= 0) {
          hint = r;
          if (accept[r] === 0) continue; // a duplicate reading: its points were applied when it first came
        } else this.countUnsequenced(tracker, ts);
      } else this.countUnsequenced(tracker, ts);
      this.point(dev, names[p], ts, v);
    }
  }

  private findReading(seqTs: number[], nr: number, ts: number): number {
    if (nr > LINEAR) return this.readingAt.get(ts) ?? -1;
    for (let i = 0; i < nr; i++) if (seqTs[i] === ts) return i;
    return -1;
  }

  /** A point whose ts matches no reading with a seq: readings without seq count once per distinct ts in a batch. */
  private countUnsequenced(tracker: Device['seq'], ts: number): void {
    const k = this.nUnsequenced;
    const set = this.unsequencedSet;
    if (k <= LINEAR) {
      const list = this.unsequenced;
      for (let i = k - 1; i >= 0; i--) if (list[i] === ts) return;
      if (k < LINEAR) {
        list[k] = ts;
        this.nUnsequenced = k + 1;
        tracker.counts.received++;
        this.readings++;
        return;
      }
      for (let i = 0; i < k; i++) set.add(list[i]);
      this.nUnsequenced = LINEAR + 1;
    }
    if (set.has(ts)) return;
    set.add(ts);
    tracker.counts.received++;
    this.readings++;
  }

  /**
   * Rare: two readings with the same ts (a device without a clock, readings stamped by the agent in one ms, or one
   * reading repeated within a batch). The n-th point of a (metric, ts) belongs to the n-th reading of that ts, and
   * is applied when that reading is new.
   */
  private applyShared(dev: Device, d: DeviceData, nr: number): void {
    const fresh = new Map<number, number[]>();
    for (let i = 0; i < nr; i++) {
      const list = fresh.get(d.seqTs[i]);
      if (list === undefined) fresh.set(d.seqTs[i], [this.accept[i]]);
      else list.push(this.accept[i]);
    }
    const seen = new Map<string, number>();
    const n = Math.min(d.metric.length, d.ts.length, d.value.length);
    for (let p = 0; p < n; p++) {
      const ts = d.ts[p];
      const v = d.value[p];
      if (!(ts >= 0) || v - v !== 0) continue;
      const flags = fresh.get(ts);
      if (flags === undefined) this.countUnsequenced(dev.seq, ts);
      else {
        const key = `${d.metric[p]}\u0000${ts}`;
        const k = seen.get(key) ?? 0;
        seen.set(key, k + 1);
        if (flags[Math.min(k, flags.length - 1)] === 0) continue;
      }
      this.point(dev, d.metric[p], ts, v);
    }
  }

  private point(dev: Device, name: string, ts: number, v: number): void {
    let slot = dev.shape.slotOf(name);
    if (slot === undefined) slot = dev.addMetric(name, this.maxMetrics);
    if (slot < 0) {
      // Past devices.max_metrics (a device inventing names must not grow the node's memory without end).
      this.dropped++;
      this.droppedDevice = dev.id;
      return;
    }
    const m = dev.m;
    const o = slot * SLOT;
    if (ts >= m[o + LATEST_TS]) {
      m[o + LATEST_VALUE] = v;
      m[o + LATEST_TS] = ts;
    }
    const minute = Math.floor(ts / MINUTE_MS);
    const head = m[o + HEAD_MINUTE];
    const b = o + HEAD;
    if (minute === head) {
      if (v < m[b]) m[b] = v;
      if (v > m[b + 1]) m[b + 1] = v;
      m[b + 2] += v;
      m[b + 3]++;
      if (ts >= m[b + 5]) {
        m[b + 4] = v;
        m[b + 5] = ts;
      }
    } else if (minute > head) {
      if (head !== -Infinity) this.sink.rolled(dev, slot, head);
      m[o + HEAD_MINUTE] = minute;
      m[b] = v;
      m[b + 1] = v;
      m[b + 2] = v;
      m[b + 3] = 1;
      m[b + 4] = v;
      m[b + 5] = ts;
    } else this.sink.late(dev, slot, minute, v, ts);
    this.points++;
  }
}
