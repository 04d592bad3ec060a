import type { DeviceCounts } from './types.js';

/**
 * Loss and duplicate accounting from a device's `seq`, in constant space: the current epoch's lowest and highest
 * seq and a bitmap of the WINDOW seqs ending at the highest (bit `s mod WINDOW`).
 *
 * - The first seq ever seen starts the count (seqs before it are not counted missing).
 * - A seq above the highest is new; the seqs skipped on the way count as missing at once.
 * - A seq within the window is new if its bit is clear (a gap filled: missing goes down), else a duplicate, whose
 *   points the store does not apply. A seq in the window but below the epoch's first seq is a late early reading:
 *   new, and the seqs between it and the first become gaps.
 * - A seq WINDOW or more below the highest means the device restarted (seq back to 0) or wrapped (2^32): a new epoch
 *   starts from it and nothing is counted missing for the jump, so a reset never counts billions of losses. The
 *   limit: a reading delayed by more than WINDOW readings is taken as a restart (counted received, never duplicate).
 * - Likewise a jump forward by MAX_FORWARD_GAP or more starts a new epoch instead of counting the gap missing (a
 *   device restarting at a random seq, or a straggler of the old epoch arriving after a wrap).
 * - A restart whose first seqs fall within WINDOW of the old highest (a device that restarts early in its life)
 *   cannot be told from duplicates and is counted as such until its seqs pass the old highest.
 *
 * Gaps that leave the window unfilled stay counted missing for good.
 */
export const WINDOW = 1024;
/** A forward jump this large (2^24 readings: 194 days at 1/s) is a new epoch, not that many missing readings. */
export const MAX_FORWARD_GAP = 2 ** 24;
const WORDS = WINDOW / 32;

export class SeqTracker {
  readonly counts: DeviceCounts = { received: 0, duplicates: 0, missing: 0 };
  started = false;
  /** First seq of the current epoch (lowered by late early readings). */
  low = 0;
  /** Highest seq of the current epoch. */
  high = 0;
  /** Epochs started after the first (restarts and wraps seen). Not persisted; for tests and logs. */
  epochs = 0;
  /** Bit (s mod WINDOW) set when seq s in (high - WINDOW, high] ∩ [low, high] was received. Null until started. */
  bits: Uint32Array | null = null;

  /** Records one reading's seq (a non-negative integer); true when it is new, false for a duplicate. */
  observe(s: number): boolean {
    const c = this.counts;
    if (!this.started) {
      this.startEpoch(s);
      return true;
    }
    const high = this.high;
    if (s > high) {
      const gap = s - high - 1;
      if (gap >= MAX_FORWARD_GAP) {
        this.epochs++;
        this.startEpoch(s);
        return true;
      }
      const bits = this.bits!;
      if (gap >= WINDOW) bits.fill(0);
      else for (let q = high + 1; q < s; q++) clearBit(bits, q);
      setBit(bits, s);
      c.missing += gap;
      c.received++;
      this.high = s;
      return true;
    }
    if (high - s >= WINDOW) {
      this.epochs++;
      this.startEpoch(s);
      return true;
    }
    const bits = this.bits!;
    if (s < this.low) {
      c.missing += this.low - s - 1;
      this.low = s;
      setBit(bits, s);
      c.received++;
      return true;
    }
    if (testBit(bits, s)) {
      c.duplicates++;
      return false;
    }
    setBit(bits, s);
    c.received++;
    c.missing--;
    return true;
  }

  private startEpoch(s: number): void {
    this.started = true;
    this.low = s;
    this.high = s;
    if (this.bits === null) this.bits = new Uint32Array(WORDS);
    else this.bits.fill(0);
    setBit(this.bits, s);
    this.counts.received++;
  }

  /**
   * Whether seq s is known: 1 received, 0 counted missing, -1 outside what this tracker can tell (not started, out
   * of range or window).
   */
  status(s: number): -1 | 0 | 1 {
    if (!this.started || s > this.high || s < this.low || this.high - s >= WINDOW) return -1;
    return testBit(this.bits!, s) ? 1 : 0;
  }

  /**
   * Folds in the tracker of the same device kept elsewhere (state moving between nodes), as if one tracker had seen
   * both streams. Exact while each side's readings span less than WINDOW seqs (then every seq is in a bitmap): a seq
   * both received counts once received plus once duplicate, a gap one side counted and the other received is
   * filled, the seqs between two disjoint ranges count missing. Beyond the window, what a side cannot tell is left
   * as it counted it. Two epochs MAX_FORWARD_GAP or more apart do not merge: counts add up and the epoch of the side
   * heard from last (`otherIsNewer`) continues.
   */
  merge(o: SeqTracker, otherIsNewer: boolean): void {
    const c = this.counts;
    if (!o.started || !this.started) {
      const started = o.started ? o : this.started ? this : null;
      c.received += o.counts.received;
      c.duplicates += o.counts.duplicates;
      c.missing += o.counts.missing;
      if (started === o) this.copyEpoch(o);
      return;
    }
    const [lo, hi] = this.high <= o.high ? [this as SeqTracker, o] : [o, this as SeqTracker];
    if (hi.low > lo.high && hi.low - lo.high - 1 >= MAX_FORWARD_GAP) {
      c.received += o.counts.received;
      c.duplicates += o.counts.duplicates;
      c.missing += o.counts.missing;
      if (otherIsNewer) this.copyEpoch(o);
      return;
    }
    let overlap = 0;
    let correction = 0;
    const visit = (s: number) => {
      const a = this.status(s);
      const b = o.status(s);
      // A side whose range holds s but whose window does not cannot tell: leave s as both counted it.
      if ((a === -1 && s >= this.low && s <= this.high) || (b === -1 && s >= o.low && s <= o.high)) return;
      if (a === 1 && b === 1) overlap++;
      const counted = (a === 0 ? 1 : 0) + (b === 0 ? 1 : 0);
      correction += (a === 1 || b === 1 ? 0 : 1) - counted;
    };
    const aFrom = Math.max(this.low, this.high - WINDOW + 1);
    for (let s = aFrom; s <= this.high; s++) visit(s);
    for (let s = Math.max(o.low, o.high - WINDOW + 1); s <= o.high; s++) if (s < aFrom || s > this.high) visit(s);
    const bridge = hi.low > lo.high + 1 ? hi.low - lo.high - 1 : 0;
    const low = Math.min(this.low, o.low);
    const high = hi.high;
    const bits = new Uint32Array(WORDS);
    for (let s = Math.max(low, high - WINDOW + 1); s <= high; s++)
      if (this.status(s) === 1 || o.status(s) === 1) setBit(bits, s);
    c.received += o.counts.received - overlap;
    c.duplicates += o.counts.duplicates + overlap;
    c.missing += o.counts.missing + bridge + correction;
    this.low = low;
    this.high = high;
    this.bits = bits;
  }

  private copyEpoch(o: SeqTracker): void {
    this.started = o.started;
    this.low = o.low;
    this.high = o.high;
    this.bits = o.bits === null ? null : o.bits.slice();
  }

  /** True when every seq of the window within the epoch was received: the bitmap need not be stored. */
  private windowFull(): boolean {
    const bits = this.bits!;
    let set = 0;
    for (let i = 0; i < WORDS; i++) set += popcount(bits[i]);
    return set === Math.min(WINDOW, this.high - this.low + 1);
  }

  /** Bytes write() takes. */
  encodedSize(): number {
    return 25 + (this.started ? 16 + (this.windowFull() ? 0 : WINDOW / 8) : 0);
  }

  /**
   * [1 flags: 1 started, 2 bitmap][8 received][8 duplicates][8 missing] then when started [8 low][8 high] and,
   * unless every seq of the window was received, the bitmap [32 × u32]; numbers little-endian. Returns the end.
   */
  write(view: DataView, at: number): number {
    const full = this.started && this.windowFull();
    view.setUint8(at, (this.started ? 1 : 0) | (this.started && !full ? 2 : 0));
    view.setFloat64(at + 1, this.counts.received, true);
    view.setFloat64(at + 9, this.counts.duplicates, true);
    view.setFloat64(at + 17, this.counts.missing, true);
    at += 25;
    if (!this.started) return at;
    view.setFloat64(at, this.low, true);
    view.setFloat64(at + 8, this.high, true);
    at += 16;
    if (full) return at;
    const bits = this.bits!;
    for (let i = 0; i < WORDS; i++, at += 4) view.setUint32(at, bits[i], true);
    return at;
  }

  /** Reads what write() wrote at `at` into this (fresh) tracker; returns the end. */
  read(view: DataView, at: number): number {
    const flags = view.getUint8(at);
    this.counts.received = view.getFloat64(at + 1, true);
    this.counts.duplicates = view.getFloat64(at + 9, true);
    this.counts.missing = view.getFloat64(at + 17, true);
    at += 25;
    if ((flags & 1) === 0) return at;
    this.started = true;
    this.low = view.getFloat64(at, true);
    this.high = view.getFloat64(at + 8, true);
    at += 16;
    const bits = (this.bits = new Uint32Array(WORDS));
    if (flags & 2) {
      for (let i = 0; i < WORDS; i++, at += 4) bits[i] = view.getUint32(at, true);
    } else {
      for (let s = Math.max(this.low, this.high - WINDOW + 1); s <= this.high; s++) setBit(bits, s);
    }
    return at;
  }
}

function setBit(bits: Uint32Array, s: number): void {
  const i = s % WINDOW;
  bits[i >>> 5] |= 1 << (i & 31);
}

function clearBit(bits: Uint32Array, s: number): void {
  const i = s % WINDOW;
  bits[i >>> 5] &= ~(1 << (i & 31));
}

function testBit(bits: Uint32Array, s: number): boolean {
  const i = s % WINDOW;
  return (bits[i >>> 5] & (1 << (i & 31))) !== 0;
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}
