/**
 * The buffer's in-memory view of what is stored: seq, record size, points and creation time of each batch,
 * oldest first, as parallel arrays read from a head index (shifting a large JS array is O(n); moving `head` is not).
 */
export class BatchIndex {
  /** An index from the entries of a LevelDB range, in key order: each value read as its record's size and points. */
  static async read(
    entries: AsyncIterable<[string, Uint8Array]>,
    seqOf: (key: string) => number,
    entry: (v: Uint8Array, seq: number) => { size: number; points: number; created: number },
  ): Promise<BatchIndex> {
    const ix = new BatchIndex();
    for await (const [k, v] of entries) {
      const seq = seqOf(k);
      const e = entry(v, seq);
      ix.push(seq, e.size, e.points, e.created);
    }
    return ix;
  }

  seqs: number[] = [];
  sizes: number[] = [];
  points: number[] = [];
  created: number[] = [];
  head = 0;
  bytes = 0;
  totalPoints = 0;

  get length(): number {
    return this.seqs.length - this.head;
  }
  push(seq: number, size: number, points: number, created: number): void {
    this.seqs.push(seq);
    this.sizes.push(size);
    this.points.push(points);
    this.created.push(created);
    this.bytes += size;
    this.totalPoints += points;
  }
  shift(): void {
    this.bytes -= this.sizes[this.head];
    this.totalPoints -= this.points[this.head];
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.seqs.length) {
      this.seqs = this.seqs.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.points = this.points.slice(this.head);
      this.created = this.created.slice(this.head);
      this.head = 0;
    }
  }
  /** Removes one seq anywhere (uplink acks arrive nearly in order, so this is usually the head). */
  remove(seq: number): boolean {
    if (this.length > 0 && this.seqs[this.head] === seq) {
      this.shift();
      return true;
    }
    const i = this.seqs.indexOf(seq, this.head);
    if (i < 0) return false;
    this.bytes -= this.sizes[i];
    this.totalPoints -= this.points[i];
    this.seqs.splice(i, 1);
    this.sizes.splice(i, 1);
    this.points.splice(i, 1);
    this.created.splice(i, 1);
    return true;
  }

  /** Replaces the `count` entries from position `i` (absolute) with one entry (a packed record). */
  replaceRun(i: number, count: number, seq: number, size: number, points: number, created: number): void {
    for (let k = i; k < i + count; k++) {
      this.bytes -= this.sizes[k];
      this.totalPoints -= this.points[k];
    }
    this.seqs.splice(i, count, seq);
    this.sizes.splice(i, count, size);
    this.points.splice(i, count, points);
    this.created.splice(i, count, created);
    this.bytes += size;
    this.totalPoints += points;
  }
}
