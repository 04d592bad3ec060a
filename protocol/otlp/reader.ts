import { ProtoError, ProtoErrorCodes } from '../errors.js';

const TWO_32 = 4294967296;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function malformed(what: string, pos: number): never {
  throw new ProtoError(ProtoErrorCodes.MALFORMED, `malformed protobuf at byte ${pos}: ${what}`);
}

/**
 * A bounds-checked protobuf reader. Every read checks the end of the current message, so truncated or hostile
 * input ends in a ProtoError (OTLPEDGE_PROTO_MALFORMED), never in an out-of-range read or a hang.
 */
export class ProtoReader {
  pos: number;
  private readonly view: DataView;

  constructor(
    readonly buf: Uint8Array,
    pos = 0,
    public end = buf.length,
  ) {
    this.pos = pos;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** Unsigned varint as a number (exact up to 2^53; lengths, enums, counts). */
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) malformed('truncated varint', this.pos);
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    return malformed('varint longer than 10 bytes', this.pos);
  }

  /** A 64-bit varint as BigInt (unsigned); int64 callers take BigInt.asIntN(64, …). */
  varintBig(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) malformed('truncated varint', this.pos);
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asUintN(64, result);
      shift += 7n;
    }
    return malformed('varint longer than 10 bytes', this.pos);
  }

  private need(n: number): void {
    if (this.pos + n > this.end) malformed(`needs ${n} more bytes, ${this.end - this.pos} left`, this.pos);
  }

  fixed32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  float(): number {
    this.need(4);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  double(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** fixed64 as a double: exact below 2^53 (nanosecond timestamps lose sub-microsecond digits; use fixed64Big). */
  fixed64Number(): number {
    this.need(8);
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    this.pos += 8;
    return hi * TWO_32 + lo;
  }

  /** sfixed64 as a double (exact within ±2^53). */
  sfixed64Number(): number {
    this.need(8);
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getInt32(this.pos + 4, true);
    this.pos += 8;
    return hi * TWO_32 + lo;
  }

  fixed64Big(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  sfixed64Big(): bigint {
    this.need(8);
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** Length-delimited bytes, as a view into the input (no copy). */
  bytes(): Uint8Array {
    const len = this.varint();
    this.need(len);
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  string(): string {
    const len = this.varint();
    this.need(len);
    const buf = this.buf;
    const start = this.pos;
    this.pos += len;
    // Short ASCII strings (attribute keys, device ids, metric names: nearly every string here) are built from char
    // codes: a TextDecoder call costs more than the loop for strings this short.
    if (len <= 32) {
      let s = '';
      let i = start;
      const end = start + len;
      for (; i < end; i++) {
        const c = buf[i];
        if (c >= 0x80) break;
        s += String.fromCharCode(c);
      }
      if (i === end) return s;
    }
    try {
      return utf8.decode(buf.subarray(start, start + len));
    } catch {
      return malformed('string is not valid UTF-8', start);
    }
  }

  /** Reads a length prefix and returns the end of the submessage, checked against this message's end. */
  submessageEnd(): number {
    const len = this.varint();
    this.need(len);
    return this.pos + len;
  }

  skip(wire: number): void {
    switch (wire) {
      case 0:
        this.varint();
        return;
      case 1:
        this.need(8);
        this.pos += 8;
        return;
      case 2: {
        const len = this.varint();
        this.need(len);
        this.pos += len;
        return;
      }
      case 5:
        this.need(4);
        this.pos += 4;
        return;
      default:
        malformed(`unsupported wire type ${wire}`, this.pos);
    }
  }

  /**
   * Calls `onField(field, wire)` for each field up to `end`; the callback must consume the field or call skip().
   * The previous end is restored afterwards, so nested calls read only their own submessage.
   */
  fields(end: number, onField: (field: number, wire: number) => void): void {
    const outer = this.enter(end);
    while (this.pos < end) {
      const key = this.key();
      const field = Math.floor(key / 8);
      const before = this.pos;
      onField(field, key & 7);
      if (this.pos === before) {
        // A callback that forgot to consume would loop forever on this field; fail loudly instead.
        malformed(`field ${field} was not consumed`, this.pos);
      }
    }
    this.leave(outer);
  }

  /**
   * For walks without a callback per field (hot paths, where a closure per submessage is an allocation per point):
   * reads end at `end` until leave(outer) with what this returned. `end` is checked against the current end.
   */
  enter(end: number): number {
    const outer = this.end;
    if (end > outer) malformed('submessage runs past its parent', this.pos);
    this.end = end;
    return outer;
  }

  leave(outer: number): void {
    this.end = outer;
  }

  /** The next field's key (field number × 8 + wire type); field number 0 is malformed. */
  key(): number {
    const key = this.varint();
    if (key < 8) malformed('field number 0', this.pos);
    return key;
  }

  /** Expects `wire` for `field`; anything else is malformed input. */
  expect(field: number, wire: number, want: number): void {
    if (wire !== want) malformed(`field ${field} has wire type ${wire}, expected ${want}`, this.pos);
  }
}
