/** The primitives of the MQTT wire format (3.1.1 and 5): variable byte integers and a bounds-checked body reader. */

export function varintLength(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

export function writeVarint(b: Buffer, pos: number, n: number): number {
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    b[pos++] = byte;
  } while (n > 0);
  return pos;
}

/** A reader over one packet body; every read checks its bounds and throws `MalformedPacket` past the end. */
export class BodyReader {
  pos = 0;
  constructor(readonly body: Buffer) {}

  get left(): number {
    return this.body.length - this.pos;
  }

  byte(): number {
    if (this.pos >= this.body.length) throw new MalformedPacket('packet ends early');
    return this.body[this.pos++];
  }

  u16(): number {
    if (this.pos + 2 > this.body.length) throw new MalformedPacket('packet ends early');
    const v = this.body.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    if (this.pos + 4 > this.body.length) throw new MalformedPacket('packet ends early');
    const v = this.body.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** A variable byte integer [MQTT-1.5.5]: at most four bytes. */
  varint(): number {
    let n = 0;
    let mul = 1;
    for (let i = 0; i < 4; i++) {
      const b = this.byte();
      n += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return n;
      mul *= 128;
    }
    throw new MalformedPacket('a variable byte integer runs past four bytes [MQTT-1.5.5]');
  }

  bytes(): Buffer {
    const n = this.u16();
    if (this.pos + n > this.body.length) throw new MalformedPacket('a length-prefixed field runs past the packet');
    const b = this.body.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /** A UTF-8 string [MQTT-1.5.3]: well-formed and without U+0000. */
  string(): string {
    const b = this.bytes();
    const s = b.toString('utf8');
    if (s.includes('\ufffd') && !Buffer.from(s, 'utf8').equals(b))
      throw new MalformedPacket('a string is not well-formed UTF-8 [MQTT-1.5.3-1]');
    if (s.includes('\u0000')) throw new MalformedPacket('a string contains U+0000 [MQTT-1.5.3-2]');
    return s;
  }
}

/**
 * A packet that breaks the wire format or the protocol: the connection must be closed [MQTT-4.8.0-1]. `reasonCode`
 * is what an MQTT 5 DISCONNECT says before the close: 0x81 malformed packet, 0x82 protocol error, or another.
 */
export class MalformedPacket extends Error {
  constructor(
    message: string,
    readonly reasonCode = 0x81,
  ) {
    super(message);
  }
}
