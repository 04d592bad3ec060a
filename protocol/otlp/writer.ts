/**
 * A small protobuf writer for the agent's hot path: one growable buffer reused across batches, no per-field
 * allocation, and nested messages written in place.
 *
 * Length-delimited submessages are written optimistically: `fork()` reserves one byte for the length, the body is
 * written after it, and `join()` patches the length — moving the body right only when it needs a longer varint
 * (bodies of 128 bytes or more). Each byte is moved at most once per enclosing level, which measured far cheaper than
 * a separate sizing pass over readings.
 */

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LDELIM = 2;
const WIRE_FIXED32 = 5;
const TWO_32 = 4294967296;

const utf8 = new TextEncoder();

export class ProtoWriter {
  buf: Uint8Array;
  pos = 0;
  private view: DataView;
  private stack: number[] = [];

  /** @param initialBytes starting capacity (default 64 KiB); grows by doubling. */
  constructor(initialBytes = 64 * 1024) {
    this.buf = new Uint8Array(initialBytes);
    this.view = new DataView(this.buf.buffer);
  }

  reset(): this {
    this.pos = 0;
    this.stack.length = 0;
    return this;
  }

  /** A copy of what was written (the writer's own buffer is reused by the next batch). */
  finish(): Uint8Array {
    if (this.stack.length !== 0) throw new Error('ProtoWriter.finish() with an unjoined fork');
    return this.buf.slice(0, this.pos);
  }

  private grow(need: number): void {
    let size = this.buf.length * 2;
    while (size < this.pos + need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  /** Unsigned varint of a non-negative integer up to 2^53. */
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

  /** int64 varint (two's complement for negatives: 10 bytes), for AnyValue.int_value. */
  int64(v: number): void {
    if (v >= 0) return this.varint(v);
    const [hi, lo] = split64(v);
    this.ensure(10);
    let h = hi;
    let l = lo;
    for (let i = 0; i < 9; i++) {
      this.buf[this.pos++] = (l & 0x7f) | 0x80;
      l = ((l >>> 7) | (h << 25)) >>> 0;
      h >>>= 7;
    }
    this.buf[this.pos++] = l & 0x01;
  }

  fixed32(v: number): void {
    this.ensure(4);
    this.view.setUint32(this.pos, v >>> 0, true);
    this.pos += 4;
  }

  /** fixed64/sfixed64 from its two 32-bit halves. */
  fixed64(hi: number, lo: number): void {
    this.ensure(8);
    this.view.setUint32(this.pos, lo >>> 0, true);
    this.view.setUint32(this.pos + 4, hi >>> 0, true);
    this.pos += 8;
  }

  /** sfixed64 of a safe integer (OTLP NumberDataPoint.as_int). */
  sfixed64(v: number): void {
    const [hi, lo] = split64(v);
    this.fixed64(hi, lo);
  }

  /**
   * fixed64 nanoseconds from epoch milliseconds: the integer milliseconds and the sub-millisecond fraction are
   * combined in 32-bit halves, since ms × 1e6 passes 2^53 and a double would round it. The fraction is kept to the
   * microsecond: a double near 1.7e12 ms resolves ~0.24 µs, so microseconds survive exactly and nanoseconds cannot.
   */
  timeFromMs(ms: number): void {
    let whole = Math.floor(ms);
    let subUs = Math.round((ms - whole) * 1000);
    if (subUs === 1000) {
      whole += 1;
      subUs = 0;
    }
    const subNs = subUs * 1000;
    const msHi = Math.floor(whole / TWO_32);
    const msLo = whole - msHi * TWO_32;
    const loProduct = msLo * 1e6 + subNs; // < 2^53
    const carry = Math.floor(loProduct / TWO_32);
    const lo = loProduct - carry * TWO_32;
    const hi = msHi * 1e6 + carry;
    this.fixed64(hi, lo);
  }

  double(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  bool(v: boolean): void {
    this.ensure(1);
    this.buf[this.pos++] = v ? 1 : 0;
  }

  /** A string field: tag, length, UTF-8 bytes. ASCII is copied by hand; other text goes through TextEncoder. */
  stringField(field: number, s: string): void {
    this.tag(field, WIRE_LDELIM);
    this.string(s);
  }

  string(s: string): void {
    const n = s.length;
    // Worst case 3 bytes per UTF-16 unit, plus a 5-byte length.
    this.ensure(n * 3 + 5);
    const b = this.buf;
    if (n < 128) {
      const start = this.pos + 1;
      let p = start;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) return this.stringSlow(s);
        b[p++] = c;
      }
      b[this.pos] = n;
      this.pos = p;
      return;
    }
    this.stringSlow(s);
  }

  private stringSlow(s: string): void {
    // Encode after a maximal reserved length, then shift into place (rare: long or non-ASCII strings).
    const lenPos = this.pos;
    const { written } = utf8.encodeInto(s, this.buf.subarray(lenPos + 5));
    const lenBytes = varintSize(written);
    this.buf.copyWithin(lenPos + lenBytes, lenPos + 5, lenPos + 5 + written);
    this.pos = lenPos;
    this.varint(written);
    this.pos = lenPos + lenBytes + written;
  }

  bytesField(field: number, bytes: Uint8Array): void {
    this.tag(field, WIRE_LDELIM);
    this.varint(bytes.length);
    this.raw(bytes);
  }

  /** Bytes already in protobuf form (a precomputed submessage). */
  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** As raw(src.subarray(from, to)), without making the view (short ranges by a loop). */
  rawRange(src: Uint8Array, from: number, to: number): void {
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

  /** Starts a length-delimited submessage under `field`; close it with join(). */
  fork(field: number): void {
    this.tag(field, WIRE_LDELIM);
    this.ensure(1);
    this.stack.push(this.pos);
    this.pos += 1;
  }

  join(): void {
    const start = this.stack.pop()!;
    const len = this.pos - start - 1;
    if (len < 128) {
      this.buf[start] = len;
      return;
    }
    const extra = varintSize(len) - 1;
    this.ensure(extra);
    this.buf.copyWithin(start + 1 + extra, start + 1, this.pos);
    const end = this.pos + extra;
    this.pos = start;
    this.varint(len);
    this.pos = end;
  }
}

export function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Two's complement halves [hi, lo] of a safe integer. */
export function split64(v: number): [number, number] {
  const neg = v < 0;
  const a = neg ? -v : v;
  let hi = Math.floor(a / TWO_32);
  let lo = a - hi * TWO_32;
  if (neg) {
    lo = (~lo + 1) >>> 0;
    hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
  }
  return [hi >>> 0, lo >>> 0];
}

export const Wire = { VARINT: WIRE_VARINT, FIXED64: WIRE_FIXED64, LDELIM: WIRE_LDELIM, FIXED32: WIRE_FIXED32 } as const;
