import type { DeviceCounts } from './types.js';

/**
 * Loss and duplicate accounting from a device's `seq`, in constant space: the highest seq seen and a bitmap of the
 * WINDOW seqs at and below it.
 *
 * - A seq above the highest: new; the seqs skipped on the way count as missing.
 * - A seq within the window: new if its bit is clear (a gap filled: missing goes down), else a duplicate.
 * - A seq more than WINDOW below the highest: the device restarted (seq back to 0) or wrapped (2^32): a new epoch
 *   starts from it. Nothing is counted missing for the jump, so a reset never counts billions of losses. The price:
 *   a reading delayed by more than WINDOW readings is taken as a restart, not as a late arrival.
 * - The first seq ever seen starts the count; earlier seqs are not counted missing.
 */
export const WINDOW = 1024;
const BYTES = WINDOW / 8;

export class SeqTracker {
  started = false;
  hi = 0;
  epochs = 0;
  readonly counts: DeviceCounts = { received: 0, duplicates: 0, missing: 0 };
  /** Bit (s mod WINDOW) is set when seq s in (hi - WINDOW, hi] has been seen. */
  readonly bits = new Uint8Array(BYTES);

  private test(s: number): boolean {
    const i = s % WINDOW;
    return (this.bits[i >>> 3] & (1 << (i & 7))) !== 0;
  }

  private set(s: number): void {
    const i = s % WINDOW;
    this.bits[i >>> 3] |= 1 << (i & 7);
  }

  private clear(s: number): void {
    const i = s % WINDOW;
    this.bits[i >>> 3] &= ~(1 << (i & 7));
  }

  private restart(seq: number): void {
    this.bits.fill(0);
    this.hi = seq;
    this.set(seq);
    this.started = true;
    this.counts.received++;
  }

  /** Records one reading's seq; true when it is new, false for a duplicate. */
  observe(seq: number): boolean {
    if (!this.started) {
      this.restart(seq);
      return true;
    }
    if (seq > this.hi) {
      const gap = seq - this.hi - 1;
      if (gap >= WINDOW) this.bits.fill(0);
      else for (let s = this.hi + 1; s < seq; s++) this.clear(s);
      this.counts.missing += gap;
      this.hi = seq;
      this.set(seq);
      this.counts.received++;
      return true;
    }
    if (this.hi - seq < WINDOW) {
      if (this.test(seq)) {
        this.counts.duplicates++;
        return false;
      }
      this.set(seq);
      this.counts.received++;
      if (this.counts.missing > 0) this.counts.missing--;
      return true;
    }
    this.epochs++;
    this.restart(seq);
    return true;
  }

  /** Fixed-size encoding: [started u8][hi f64][received f64][duplicates f64][missing f64][epochs u32][bitmap]. */
  static readonly BYTES = 1 + 8 * 4 + 4 + BYTES;

  write(view: DataView, at: number): void {
    view.setUint8(at, this.started ? 1 : 0);
    view.setFloat64(at + 1, this.hi, true);
    view.setFloat64(at + 9, this.counts.received, true);
    view.setFloat64(at + 17, this.counts.duplicates, true);
    view.setFloat64(at + 25, this.counts.missing, true);
    view.setUint32(at + 33, this.epochs, true);
    new Uint8Array(view.buffer, view.byteOffset + at + 37, BYTES).set(this.bits);
  }

  static read(view: DataView, at: number): SeqTracker {
    const t = new SeqTracker();
    t.started = view.getUint8(at) === 1;
    t.hi = view.getFloat64(at + 1, true);
    t.counts.received = view.getFloat64(at + 9, true);
    t.counts.duplicates = view.getFloat64(at + 17, true);
    t.counts.missing = view.getFloat64(at + 25, true);
    t.epochs = view.getUint32(at + 33, true);
    t.bits.set(new Uint8Array(view.buffer, view.byteOffset + at + 37, BYTES));
    return t;
  }
}
