/**
 * Which batches of one source (an agent) have been applied, so a batch resent after a lost ack is recognised: every
 * seq ≤ `floor`, plus sorted disjoint ranges of applied seqs above it. Agents send oldest first with a few batches in
 * flight, so in a single-node cluster the ranges are a handful that fold into the floor as the holes fill.
 *
 * Holes that never fill are normal (a batch an agent sent to another node of the ring, one this node REJECTED), so
 * the ranges are capped at MAX_RANGES: past that, the floor moves up over the oldest range — the trade-off is that a
 * batch whose seq lies in a hole that old (more than MAX_RANGES holes behind) would be taken as applied and dropped.
 * An agent retries its oldest unacknowledged batches first, with a small window in flight, so a retry is never that
 * far behind.
 *
 * A seq more than RESTART_DISTANCE below the highest applied cannot be a retry (it would be far outside any agent's
 * window): the agent lost its buffer and numbers from 1 again, so the record starts over (nothing applied but that seq). An agent that
 * restarts its numbering before reaching RESTART_DISTANCE has its first batches taken as duplicates — the agent
 * persists its next seq, so that takes a wiped data directory and a reused agent id.
 */
export const MAX_RANGES = 1024;
export const RESTART_DISTANCE = 10_000;
const FORMAT = 1;

export class SourceDedup {
  /** Every seq ≤ floor has been applied (agents number from 1; 0 = none yet). */
  floor = 0;
  /** [start, end, start, end, …]: applied seqs above floor + 1, sorted, disjoint, not adjacent. */
  ranges: number[] = [];

  get highest(): number {
    return this.ranges.length > 0 ? this.ranges[this.ranges.length - 1] : this.floor;
  }

  has(seq: number): boolean {
    if (seq + RESTART_DISTANCE < this.highest) return false; // a numbering restart: see add()
    if (seq <= this.floor) return true;
    const r = this.ranges;
    const i = this.rangeAtOrBefore(seq);
    return i >= 0 && seq <= r[i + 1];
  }

  /** Marks seq applied (call only after has(seq) was false). */
  add(seq: number): void {
    if (seq + RESTART_DISTANCE < this.highest) {
      this.floor = 0;
      this.ranges = [];
    }
    const r = this.ranges;
    const i = this.rangeAtOrBefore(seq); // index of the range starting at or before seq, or -2
    const joinsPrev = i >= 0 ? r[i + 1] + 1 === seq : seq === this.floor + 1;
    const next = i + 2; // the range after seq
    const joinsNext = next < r.length && r[next] === seq + 1;
    if (joinsPrev && joinsNext) {
      if (i >= 0) r.splice(i + 1, 2); // [a, seq-1] + [seq+1, b] → [a, b]
      else {
        this.floor = r[next + 1];
        r.splice(next, 2);
      }
    } else if (joinsPrev) {
      if (i >= 0) r[i + 1] = seq;
      else this.floor = seq;
    } else if (joinsNext) r[next] = seq;
    else r.splice(next, 0, seq, seq);
    while (r.length > 2 * MAX_RANGES) {
      this.floor = r[1];
      r.splice(0, 2);
    }
  }

  /** Index of the last range whose start ≤ seq, or -2 when none. */
  private rangeAtOrBefore(seq: number): number {
    const r = this.ranges;
    let lo = 0;
    let hi = r.length / 2 - 1;
    let found = -2;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (r[2 * mid] <= seq) {
        found = 2 * mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  encodedSize(): number {
    return 13 + 8 * this.ranges.length;
  }

  /** [1 format][8 floor][4 n ranges] then n × ([8 start][8 end]); little-endian. */
  encode(view: DataView, at: number): number {
    view.setUint8(at, FORMAT);
    view.setFloat64(at + 1, this.floor, true);
    view.setUint32(at + 9, this.ranges.length / 2, true);
    at += 13;
    for (const v of this.ranges) {
      view.setFloat64(at, v, true);
      at += 8;
    }
    return at;
  }

  static decode(bytes: Uint8Array): SourceDedup {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (view.getUint8(0) !== FORMAT) throw new Error(`dedup record has format ${view.getUint8(0)}; this node reads format ${FORMAT}`);
    const d = new SourceDedup();
    d.floor = view.getFloat64(1, true);
    const n = view.getUint32(9, true);
    for (let i = 0, at = 13; i < 2 * n; i++, at += 8) d.ranges.push(view.getFloat64(at, true));
    return d;
  }
}
