/**
 * MQTT 3.1.1 wire format, the parts a publish-mostly peer needs: splitting a byte stream into packets, reading
 * CONNECT (of any level; MQTT 5's packets are in v5.ts), PUBLISH and SUBSCRIBE, and writing the small packets that
 * answer them. No I/O: the agent's device
 * sessions and the simulators' lean client and floor broker feed it bytes and write what it returns.
 */

import { BodyReader, MalformedPacket, varintLength, writeVarint } from './reader.js';
import { ALLOWED, readProperties, type Properties } from './properties.js';

export { BodyReader, MalformedPacket, varintLength, writeVarint };

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

export interface ConnectPacket {
  /** 'MQTT' (3.1.1, 5) or 'MQIsdp' (3.1). */
  protocolName: string;
  /** 3 = MQTT 3.1, 4 = 3.1.1, 5 = MQTT 5. */
  protocolLevel: number;
  /** clean session (3.1.1) or clean start (5) */
  clean: boolean;
  /** seconds; 0 = no keepalive */
  keepalive: number;
  clientId: string;
  will: boolean;
  username?: string;
  password?: Buffer;
  /** MQTT 5: the CONNECT's properties. */
  properties?: Properties;
  /** The will message, when `will` is set. */
  willMessage?: WillMessage;
}

export interface WillMessage {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  /** MQTT 5: the will's properties (delay, content type, user properties…). */
  properties?: Properties;
}

/**
 * Reads a CONNECT body. For protocol levels other than 3, 4 and 5 only the name, level and flags are read; `clientId`
 * is then ''.
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
  if (protocolLevel !== 3 && protocolLevel !== 4 && protocolLevel !== 5) return packet;
  const v5 = protocolLevel === 5;
  if ((flags & 0x01) !== 0) throw new MalformedPacket('CONNECT reserved flag is set [MQTT-3.1.2-3]');
  if (!will && (flags & 0x38) !== 0) throw new MalformedPacket('will QoS or retain set without a will [MQTT-3.1.2-11]');
  if (((flags >> 3) & 3) === 3) throw new MalformedPacket('will QoS 3 [MQTT-3.1.2-14]');
  const hasUser = (flags & 0x80) !== 0;
  const hasPassword = (flags & 0x40) !== 0;
  if (hasPassword && !hasUser && !v5) throw new MalformedPacket('password without a username [MQTT-3.1.2-22]');
  if (v5) packet.properties = readProperties(r, ALLOWED.CONNECT);
  packet.clientId = r.string();
  if (will) {
    const properties = v5 ? readProperties(r, ALLOWED.WILL) : undefined;
    const topic = r.string();
    if (topic.length === 0 || topic.includes('+') || topic.includes('#'))
      throw new MalformedPacket(`will topic ${JSON.stringify(topic)} is not a topic name [MQTT-3.1.3-11]`);
    packet.willMessage = {
      topic,
      payload: Buffer.from(r.bytes()),
      qos: ((flags >> 3) & 3) as 0 | 1 | 2,
      retain: (flags & 0x20) !== 0,
      properties,
    };
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
