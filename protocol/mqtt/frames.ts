/**
 * MQTT 3.1.1 wire format, the parts a publish-mostly peer needs: splitting a byte stream into packets, reading
 * CONNECT, PUBLISH and SUBSCRIBE, and writing the small packets that answer them. No I/O: the agent's device
 * sessions and the simulators' lean client and floor broker feed it bytes and write what it returns.
 */

export const PacketType = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
} as const;

/** What one `FrameSplitter.push` ended with. */
export type SplitResult = 'ok' | 'malformed' | 'too_large';

/**
 * Cuts a byte stream into whole packets. A packet whose length field says more than `maxPacketBytes` is refused
 * from its fixed header, before its body is buffered; a length field of more than four bytes is not MQTT
 * [MQTT-2.2.3]. A partial packet is copied once, so the caller's chunk may be reused.
 */
export class FrameSplitter {
  private rest: Buffer | null = null;

  constructor(private readonly maxPacketBytes = 268_435_455) {}

  /**
   * Calls `onPacket(first byte, body)` for each whole packet in `chunk`; the body is a view into the chunk. When
   * `onPacket` returns false the splitting stops there and what is left of the chunk is dropped.
   */
  push(chunk: Buffer, onPacket: (first: number, body: Buffer) => boolean | void): SplitResult {
    let buf = this.rest === null ? chunk : Buffer.concat([this.rest, chunk]);
    this.rest = null;
    while (buf.length >= 2) {
      let len = 0;
      let mul = 1;
      let i = 1;
      for (; i < 5 && i < buf.length; i++) {
        len += (buf[i] & 0x7f) * mul;
        mul *= 128;
        if ((buf[i] & 0x80) === 0) break;
      }
      if (i === 5) return 'malformed';
      if (i >= buf.length) break; // the length itself is still incomplete
      if (len > this.maxPacketBytes) return 'too_large';
      const end = i + 1 + len;
      if (buf.length < end) break;
      if (onPacket(buf[0], buf.subarray(i + 1, end)) === false) return 'ok';
      buf = buf.subarray(end);
    }
    if (buf.length > 0) this.rest = Buffer.from(buf);
    return 'ok';
  }

  /** Bytes held of a packet not yet whole. */
  get pending(): number {
    return this.rest?.length ?? 0;
  }
}

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
class BodyReader {
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

/** A packet that breaks the wire format: the connection must be closed [MQTT-4.8.0-1]. */
export class MalformedPacket extends Error {}

export interface ConnectPacket {
  /** 'MQTT' (3.1.1, 5) or 'MQIsdp' (3.1). */
  protocolName: string;
  /** 3 = MQTT 3.1, 4 = 3.1.1, 5 = MQTT 5. */
  protocolLevel: number;
  clean: boolean;
  /** seconds; 0 = no keepalive */
  keepalive: number;
  clientId: string;
  will: boolean;
  username?: string;
  password?: Buffer;
}

/**
 * Reads a CONNECT body. For protocol levels other than 3 and 4 only the name, level and flags are read (the rest of
 * an MQTT 5 CONNECT has properties); `clientId` is then ''.
 */
export function readConnect(body: Buffer): ConnectPacket {
  const r = new BodyReader(body);
  const protocolName = r.string();
  const protocolLevel = r.byte();
  const flags = r.byte();
  const keepalive = r.u16();
  const clean = (flags & 0x02) !== 0;
  const will = (flags & 0x04) !== 0;
  const packet: ConnectPacket = { protocolName, protocolLevel, clean, keepalive, clientId: '', will };
  if (protocolLevel !== 3 && protocolLevel !== 4) return packet;
  if ((flags & 0x01) !== 0) throw new MalformedPacket('CONNECT reserved flag is set [MQTT-3.1.2-3]');
  if (!will && (flags & 0x38) !== 0) throw new MalformedPacket('will QoS or retain set without a will [MQTT-3.1.2-11]');
  if (((flags >> 3) & 3) === 3) throw new MalformedPacket('will QoS 3 [MQTT-3.1.2-14]');
  const hasUser = (flags & 0x80) !== 0;
  const hasPassword = (flags & 0x40) !== 0;
  if (hasPassword && !hasUser) throw new MalformedPacket('password without a username [MQTT-3.1.2-22]');
  packet.clientId = r.string();
  if (will) {
    r.string();
    r.bytes();
  }
  if (hasUser) packet.username = r.string();
  if (hasPassword) packet.password = Buffer.from(r.bytes());
  if (r.left !== 0) throw new MalformedPacket('CONNECT has bytes past its payload');
  return packet;
}

export interface PublishPacket {
  topic: string;
  qos: 0 | 1 | 2;
  retain: boolean;
  dup: boolean;
  /** 0 for QoS 0 */
  messageId: number;
  /** a view into the body */
  payload: Buffer;
}

/** Reads a PUBLISH (3.1.1); a wildcard in its topic or QoS 3 is malformed [MQTT-3.3.2-2, MQTT-3.3.1-4]. */
export function readPublish(first: number, body: Buffer): PublishPacket {
  const qos = (first >> 1) & 3;
  if (qos === 3) throw new MalformedPacket('PUBLISH with QoS 3 [MQTT-3.3.1-4]');
  const r = new BodyReader(body);
  const topic = r.string();
  if (topic.length === 0) throw new MalformedPacket('PUBLISH with an empty topic [MQTT-4.7.3-1]');
  if (topic.includes('+') || topic.includes('#'))
    throw new MalformedPacket('PUBLISH topic has a wildcard [MQTT-3.3.2-2]');
  const messageId = qos > 0 ? r.u16() : 0;
  if (qos > 0 && messageId === 0) throw new MalformedPacket('PUBLISH with message id 0 [MQTT-2.3.1-1]');
  return {
    topic,
    qos: qos as 0 | 1 | 2,
    retain: (first & 0x01) !== 0,
    dup: (first & 0x08) !== 0,
    messageId,
    payload: body.subarray(r.pos),
  };
}

/** Reads a SUBSCRIBE or UNSUBSCRIBE body: its message id and filters (with requested QoS for SUBSCRIBE). */
export function readSubscribe(
  body: Buffer,
  withQos: boolean,
): { messageId: number; filters: { topic: string; qos: number }[] } {
  const r = new BodyReader(body);
  const messageId = r.u16();
  const filters: { topic: string; qos: number }[] = [];
  while (r.left > 0) {
    const topic = r.string();
    const qos = withQos ? r.byte() : 0;
    if (qos > 2) throw new MalformedPacket('SUBSCRIBE asks for QoS above 2 [MQTT-3.8.3-4]');
    if (!validFilter(topic)) throw new MalformedPacket(`topic filter ${JSON.stringify(topic)} is not valid`);
    filters.push({ topic, qos });
  }
  if (filters.length === 0) throw new MalformedPacket('SUBSCRIBE or UNSUBSCRIBE without a filter [MQTT-3.8.3-3]');
  return { messageId, filters };
}

/** MQTT filter matching ('+' one level, '#' the rest, including none), as mqemitter's with empty levels matched. */
export function matches(filter: readonly string[], levels: readonly string[]): boolean {
  for (let i = 0; i < filter.length; i++) {
    const f = filter[i];
    if (f === '#') return true;
    if (i >= levels.length) return false;
    if (f !== '+' && f !== levels[i]) return false;
  }
  return filter.length === levels.length;
}

/** A filter of the MQTT grammar: '#' only last and alone on its level, '+' alone on its level [MQTT-4.7.1]. */
export function validFilter(filter: string): boolean {
  if (filter.length === 0) return false;
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i];
    if (l.includes('#') && (l !== '#' || i !== levels.length - 1)) return false;
    if (l.includes('+') && l !== '+') return false;
  }
  return true;
}

/** PUBACK, PUBREC, PUBREL (flags 0010) or PUBCOMP for `messageId`; also UNSUBACK. */
export function ackPacket(type: number, messageId: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b[0] = (type << 4) | (type === PacketType.PUBREL ? 0x02 : 0);
  b[1] = 2;
  b.writeUInt16BE(messageId, 2);
  return b;
}

export function connackPacket(returnCode: number, sessionPresent = false): Buffer {
  return Buffer.from([0x20, 0x02, sessionPresent ? 1 : 0, returnCode]);
}

export function subackPacket(messageId: number, granted: readonly number[]): Buffer {
  const remaining = 2 + granted.length;
  const b = Buffer.allocUnsafe(1 + varintLength(remaining) + remaining);
  b[0] = 0x90;
  let pos = writeVarint(b, 1, remaining);
  b.writeUInt16BE(messageId, pos);
  pos += 2;
  for (let i = 0; i < granted.length; i++) b[pos + i] = granted[i];
  return b;
}

export const PINGRESP = Buffer.from([0xd0, 0x00]);

/** A PUBLISH packet; `messageId` is written for QoS 1 and 2. */
export function publishPacket(topic: string, payload: Uint8Array, qos: 0 | 1 | 2 = 0, messageId = 0): Buffer {
  const t = Buffer.from(topic, 'utf8');
  const remaining = 2 + t.length + (qos > 0 ? 2 : 0) + payload.length;
  const p = Buffer.allocUnsafe(1 + varintLength(remaining) + remaining);
  p[0] = (PacketType.PUBLISH << 4) | (qos << 1);
  let pos = writeVarint(p, 1, remaining);
  p.writeUInt16BE(t.length, pos);
  pos += 2 + t.copy(p, pos + 2);
  if (qos > 0) {
    p.writeUInt16BE(messageId, pos);
    pos += 2;
  }
  p.set(payload, pos);
  return p;
}
