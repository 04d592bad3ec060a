import { ProtoError, ProtoErrorCodes } from '../../errors.js';

/**
 * Byte columns for the uplink frame codec: a growable sink and a bounds-checked source of unsigned varints
 * (exact up to 2^53), zigzag varints and raw bytes. A sink is reused frame after frame (reset keeps its memory).
 */

const TWO_32 = 4294967296;

export class ByteSink {
  buf: Uint8Array;
  pos = 0;

  constructor(initial = 4096) {
    this.buf = new Uint8Array(initial);
  }

  reset(): void {
    this.pos = 0;
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    grown.set(this.buf.subarray(0, this.pos));
    this.buf = grown;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  /** Unsigned varint of an integer in [0, 2^53]. */
  varint(v: number): void {
    this.ensure(10);
    const b = this.buf;
    let p = this.pos;
    while (v > 0x7fffffff) {
      b[p++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    while (v > 0x7f) {
      b[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[p++] = v;
    this.pos = p;
  }

  /** Zigzag varint of an integer in [-2^52, 2^52]. */
  zigzag(v: number): void {
    this.varint(v >= 0 ? v * 2 : -v * 2 - 1);
  }

  /** Two 32-bit halves, low first, little-endian. */
  u64(lo: number, hi: number): void {
    this.ensure(8);
    const b = this.buf;
    const p = this.pos;
    b[p] = lo;
    b[p + 1] = lo >>> 8;
    b[p + 2] = lo >>> 16;
    b[p + 3] = lo >>> 24;
    b[p + 4] = hi;
    b[p + 5] = hi >>> 8;
    b[p + 6] = hi >>> 16;
    b[p + 7] = hi >>> 24;
    this.pos = p + 8;
  }

  bytes(src: Uint8Array): void {
    this.ensure(src.length);
    this.buf.set(src, this.pos);
    this.pos += src.length;
  }

  /** Appends src[from, to) without a view of it (short ranges, the most of them here, by a loop). */
  copy(src: Uint8Array, from: number, to: number): void {
    const n = to - from;
    this.ensure(n);
    if (n > 512) this.buf.set(src.subarray(from, to), this.pos);
    else {
      const b = this.buf;
      let p = this.pos;
      for (let i = from; i < to; i++) b[p++] = src[i];
    }
    this.pos += n;
  }

  view(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

export function corrupt(what: string): never {
  throw new ProtoError(ProtoErrorCodes.MALFORMED, `uplink frame: ${what}`);
}

export class ByteSource {
  pos: number;

  constructor(
    readonly buf: Uint8Array,
    pos = 0,
    readonly end = buf.length,
  ) {
    this.pos = pos;
  }

  get left(): number {
    return this.end - this.pos;
  }

  byte(): number {
    if (this.pos >= this.end) corrupt('truncated column');
    return this.buf[this.pos++];
  }

  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.end) corrupt('truncated varint');
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (result > Number.MAX_SAFE_INTEGER + 1) corrupt('varint past 2^53');
        return result;
      }
      mul *= 128;
    }
    return corrupt('varint longer than 8 bytes');
  }

  zigzag(): number {
    const v = this.varint();
    return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
  }

  /** A count or length that cannot be larger than `max`. */
  bounded(max: number, what: string): number {
    const v = this.varint();
    if (v > max) corrupt(`${what} ${v} exceeds ${max}`);
    return v;
  }

  /** Reads 8 bytes into `out` as [lo, hi] (unsigned 32-bit halves). */
  u64(out: [number, number]): void {
    if (this.pos + 8 > this.end) corrupt('truncated 64-bit value');
    const b = this.buf;
    const p = this.pos;
    out[0] = (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
    out[1] = (b[p + 4] | (b[p + 5] << 8) | (b[p + 6] << 16) | (b[p + 7] << 24)) >>> 0;
    this.pos = p + 8;
  }

  bytes(n: number): Uint8Array {
    if (n > this.end - this.pos) corrupt(`${n} bytes needed, ${this.end - this.pos} left`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

/** hi·2^32 + lo − (hi2·2^32 + lo2) as a double: exact while the difference is within ±2^53. */
export function diff64(lo: number, hi: number, lo2: number, hi2: number): number {
  return (hi - hi2) * TWO_32 + (lo - lo2);
}

/** (lo, hi) + d, where d is an integer and the result fits 64 bits unsigned; writes into `out`. */
export function add64(lo: number, hi: number, d: number, out: [number, number]): void {
  const l = lo + d; // exact: |d| ≤ 2^53
  const carry = Math.floor(l / TWO_32);
  out[0] = l - carry * TWO_32;
  out[1] = (hi + carry) >>> 0;
}
