/**
 * Which batches of one source (an agent) have been applied: every seq ≤ `floor`, plus the sorted seqs above it.
 * Agents send oldest first with a few batches in flight, so the set above the floor stays tiny; it is still capped
 * (MAX_ABOVE): past that the floor jumps to the oldest entry, and a retry of a batch older than the new floor would be
 * taken as applied — acceptable, since an agent retries the oldest batches first and long before 10,000 newer ones
 * have landed.
 */
export const MAX_ABOVE = 10_000;

export class SourceDedup {
  floor = 0;
  above: number[] = [];

  has(seq: number): boolean {
    if (seq <= this.floor) return true;
    return binarySearch(this.above, seq) >= 0;
  }

  add(seq: number): void {
    if (this.has(seq)) return;
    const i = -binarySearch(this.above, seq) - 1;
    this.above.splice(i, 0, seq);
    // Fold the contiguous run just above the floor into it.
    while (this.above.length > 0 && this.above[0] === this.floor + 1) {
      this.floor++;
      this.above.shift();
    }
    while (this.above.length > MAX_ABOVE) this.floor = this.above.shift()!;
  }

  /** Forgets one seq (its write failed, so it was not applied after all). */
  remove(seq: number): void {
    if (seq <= this.floor) {
      const back: number[] = [];
      for (let s = seq + 1; s <= this.floor; s++) back.push(s);
      this.floor = seq - 1;
      this.above = [...back, ...this.above];
      return;
    }
    const i = binarySearch(this.above, seq);
    if (i >= 0) this.above.splice(i, 1);
  }

  encode(): Uint8Array {
    const out = new Float64Array(1 + this.above.length);
    out[0] = this.floor;
    out.set(this.above, 1);
    return new Uint8Array(out.buffer);
  }

  static decode(bytes: Uint8Array): SourceDedup {
    const copy = new Uint8Array(bytes); // aligned
    const f = new Float64Array(copy.buffer, 0, copy.length / 8);
    const d = new SourceDedup();
    d.floor = f[0];
    d.above = Array.from(f.subarray(1));
    return d;
  }
}

function binarySearch(xs: number[], v: number): number {
  let lo = 0;
  let hi = xs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid] < v) lo = mid + 1;
    else if (xs[mid] > v) hi = mid - 1;
    else return mid;
  }
  return -(lo + 1);
}
