import { createHash } from 'node:crypto';

/**
 * Which batches of one source (an agent) have been applied, so a batch resent after a lost ack is recognised: every
 * seq ≤ `floor`, plus a bitmap of applied seqs above it.
 *
 * The floor follows the agent's low-water mark (`acked_below` in UplinkBatch: every seq below it has been
 * acknowledged or moved aside, and will never be sent again). In a cluster each node sees only the seqs routed to it,
 * so its applied seqs have holes that never fill; without the mark the floor could only guess its way over them, and
 * a batch resent from an old backlog (its node died, the ring moved its devices here) could fall under a guessed
 * floor and be dropped as a duplicate although it was never applied. With the mark the floor never passes a seq the
 * agent may still send, and the bitmap spans only the agent's unacknowledged window: a few bytes when it is healthy,
 * a bit per batch of backlog when it is not.
 *
 * Bounds: the bitmap spans at most MAX_SPAN seqs; a seq newer than that lifts the floor (a batch in a hole more than
 * MAX_SPAN seqs behind the newest would then be taken as applied — an agent would have to hold a million unsent
 * batches). Agents that send no mark get the floor lifted only by filled holes and MAX_SPAN.
 *
 * Parts: when a node splits a batch by owner (ClusterRouter), each owner applies its part, and marks the devices of
 * that part applied for that seq (a 48-bit hash of each device id). A retry under a changed ring splits differently:
 * only its devices not marked are applied. The whole batch arriving after some of its parts (the ring changed back)
 * is applied without the devices its parts covered, and then marks the seq. Part marks above the floor are kept; the
 * floor drops them.
 *
 * An agent whose buffer is new (a wiped data directory, a replaced gateway keeping its agent id) numbers from 1
 * again. Its batches carry the buffer's id (UplinkBatch.buffer_id, random, made with the buffer): a different id
 * starts the record over, so not one of the new buffer's batches is taken for a duplicate. For senders that give no
 * id, a seq more than RESTART_DISTANCE below the floor is taken as the same kind of restart.
 */
export const MAX_SPAN = 1 << 20;
export const RESTART_DISTANCE = 10_000;
/**
 * Format 1 held sorted ranges; format 2 a bitmap and parts keyed by device-set hash; format 3 (written now) the
 * bitmap and parts as device hashes. All are read; a format 2 record's parts name no devices and are forgotten.
 */
const FORMAT_RANGES = 1;
const FORMAT_BITMAP = 2;
const FORMAT_DEVICES = 3;
/** Whole bytes of bitmap below the floor are dropped once this many have gathered (amortizes the copy). */
const COMPACT_BYTES = 64;

export class SourceDedup {
  /** The agent buffer these seqs belong to (UplinkBatch.buffer_id); 0 = not known. */
  bufferId = 0;
  /** Every seq ≤ floor has been applied or will never be sent again (agents number from 1; 0 = none yet). */
  floor = 0;
  /** Seq of bit 0 of `bits` (a multiple of 8, plus 1); ≤ floor + 1. */
  private base = 1;
  private bits = new Uint8Array(0);
  /** Highest seq applied (0 = none). */
  private top = 0;
  /** Parts of split batches applied here, above the floor: seq → hashes of the devices applied (deviceHash). */
  private parts = new Map<number, number[]>();

  get highest(): number {
    return Math.max(this.floor, this.top);
  }

  has(seq: number): boolean {
    if (seq <= this.floor) return seq + RESTART_DISTANCE >= this.floor; // far below: a numbering restart, see add()
    return this.bit(seq);
  }

  /**
   * The buffer a batch comes from: a different one than recorded is a new numbering, and the record starts over.
   * True when the record changed (it must be written).
   */
  useBuffer(bufferId: number): boolean {
    if (bufferId === 0 || bufferId === this.bufferId) return false;
    if (this.bufferId !== 0) this.clear();
    this.bufferId = bufferId;
    return true;
  }

  private clear(): void {
    this.floor = 0;
    this.base = 1;
    this.bits = new Uint8Array(0);
    this.top = 0;
    this.parts.clear();
  }

  /** Hashes of the devices of batch `seq` applied as parts (not as the whole batch), or undefined. */
  partDevices(seq: number): readonly number[] | undefined {
    return this.parts.get(seq);
  }

  /** Marks devices of batch `seq` applied as a part (call only after has(seq) was false). */
  addPart(seq: number, deviceHashes: readonly number[]): void {
    if (!this.makeRoom(seq)) return;
    const hashes = this.parts.get(seq);
    if (hashes) hashes.push(...deviceHashes);
    else this.parts.set(seq, [...deviceHashes]);
  }

  /** Marks seq applied (call only after has(seq) was false); its part marks are no longer needed. */
  add(seq: number): void {
    if (!this.makeRoom(seq)) return;
    this.parts.delete(seq);
    const i = seq - this.base;
    if (i >> 3 >= this.bits.length) {
      const grown = new Uint8Array(Math.max(16, (i >> 3) + 1, this.bits.length * 2));
      grown.set(this.bits);
      this.bits = grown;
    }
    this.bits[i >> 3] |= 1 << (i & 7);
    if (seq > this.top) this.top = seq;
    if (seq === this.floor + 1) this.advance();
  }

  /**
   * Before marking seq: a seq far below the floor is a numbering restart (the record starts over); a seq past
   * MAX_SPAN lifts the floor. False when seq is at or below the floor (already covered).
   */
  private makeRoom(seq: number): boolean {
    if (seq <= this.floor) {
      if (seq + RESTART_DISTANCE >= this.floor) return false;
      this.clear();
    }
    if (seq - this.base >= MAX_SPAN) this.raise(seq - MAX_SPAN + 1);
    return seq > this.floor;
  }

  /** The agent's low-water mark: every seq below `ackedBelow` will never be sent again. */
  raise(ackedBelow: number): void {
    if (ackedBelow - 1 <= this.floor) return;
    this.floor = ackedBelow - 1;
    this.advance();
  }

  /** Moves the floor over applied seqs just above it and drops bitmap bytes wholly below it. */
  private advance(): void {
    while (this.bit(this.floor + 1)) this.floor++;
    for (const seq of this.parts.keys()) if (seq <= this.floor) this.parts.delete(seq);
    // Seqs reach 2^53: byte counts here can pass 2^31, so no >> on them.
    const drop = Math.floor((this.floor + 1 - this.base) / 8);
    if (drop >= this.bits.length) {
      this.bits = new Uint8Array(0);
      this.base += drop * 8;
      if (this.top < this.floor) this.top = this.floor;
    } else if (drop >= COMPACT_BYTES) {
      this.bits = this.bits.slice(drop);
      this.base += drop * 8;
    }
  }

  private bit(seq: number): boolean {
    const i = seq - this.base;
    return i >= 0 && i < this.bits.length * 8 && (this.bits[i >> 3] & (1 << (i & 7))) !== 0;
  }

  /** Bitmap bytes a record carries: from the byte holding floor + 1 to the byte holding the highest seq. */
  private span(): { from: number; to: number } {
    const from = Math.min(this.bits.length, Math.floor((this.floor + 1 - this.base) / 8));
    const to = this.top > this.floor ? Math.min(this.bits.length, Math.floor((this.top - this.base) / 8) + 1) : from;
    return { from, to };
  }

  encodedSize(): number {
    const { from, to } = this.span();
    let n = 33 + (to - from);
    for (const hashes of this.parts.values()) n += 12 + 8 * hashes.length;
    return n;
  }

  /**
   * [1 format 3][8 buffer id][8 floor][8 seq of the first bitmap bit][4 n bytes] then n bitmap bytes,
   * [4 n parts] then per part
   * seq [8 seq][4 n hashes][8 device hash]…; little-endian.
   */
  encode(view: DataView, at: number): number {
    const { from, to } = this.span();
    view.setUint8(at, FORMAT_DEVICES);
    view.setFloat64(at + 1, this.bufferId, true);
    view.setFloat64(at + 9, this.floor, true);
    view.setFloat64(at + 17, this.base + from * 8, true);
    view.setUint32(at + 25, to - from, true);
    at += 29;
    for (let i = from; i < to; i++) view.setUint8(at++, this.bits[i]);
    view.setUint32(at, this.parts.size, true);
    at += 4;
    for (const [seq, hashes] of this.parts) {
      view.setFloat64(at, seq, true);
      view.setUint32(at + 8, hashes.length, true);
      at += 12;
      for (const h of hashes) {
        view.setFloat64(at, h, true);
        at += 8;
      }
    }
    return at;
  }

  static decode(bytes: Uint8Array): SourceDedup {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const format = view.getUint8(0);
    const d = new SourceDedup();
    if (format === FORMAT_RANGES) {
      // [1][8 floor][4 n ranges] then n × ([8 start][8 end])
      d.raise(view.getFloat64(1, true) + 1);
      const n = view.getUint32(9, true);
      for (let i = 0, at = 13; i < n; i++, at += 16) {
        for (let s = view.getFloat64(at, true), end = view.getFloat64(at + 8, true); s <= end; s++)
          if (!d.has(s)) d.add(s);
      }
      return d;
    }
    if (format !== FORMAT_BITMAP && format !== FORMAT_DEVICES)
      throw new Error(
        `dedup record has format ${format}; this node reads formats ${FORMAT_RANGES}, ${FORMAT_BITMAP} and ${FORMAT_DEVICES}`,
      );
    d.bufferId = view.getFloat64(1, true);
    d.floor = view.getFloat64(9, true);
    d.base = view.getFloat64(17, true);
    const n = view.getUint32(25, true);
    d.bits = bytes.slice(29, 29 + n);
    let at = 29 + n;
    const parts = view.getUint32(at, true);
    at += 4;
    for (let i = 0; i < parts; i++) {
      const seq = view.getFloat64(at, true);
      const count = view.getUint32(at + 8, true);
      at += 12;
      const hashes: number[] = [];
      for (let k = 0; k < count; k++, at += 8) hashes.push(view.getFloat64(at, true));
      if (format === FORMAT_DEVICES) d.parts.set(seq, hashes);
    }
    d.top = d.floor;
    for (let i = n * 8 - 1; i >= 0; i--) {
      if (d.bits[i >> 3] & (1 << (i & 7))) {
        d.top = Math.max(d.floor, d.base + i);
        break;
      }
    }
    return d;
  }
}

/** A device's mark in a part: the first 48 bits of SHA-256 of its id (exact in a JS number, the same on every node). */
export function deviceHash(deviceId: string): number {
  return createHash('sha256').update(deviceId).digest().readUIntBE(0, 6);
}
