/**
 * The MQTT 5 packets a publish-mostly peer exchanges with its broker [MQTT 5.0 §3]: reading PUBLISH, PUBREL,
 * SUBSCRIBE, UNSUBSCRIBE and DISCONNECT with their properties, and writing CONNACK, the acks with reason codes,
 * SUBACK, UNSUBACK, DISCONNECT and PUBLISH. CONNECT of every level is read in frames.ts.
 */
import { PacketType, validFilter } from './frames.js';
import {
  ALLOWED,
  readProperties,
  ReasonCode,
  writeProperties,
  type OutProperty,
  type Properties,
} from './properties.js';
import { BodyReader, MalformedPacket, varintLength, writeVarint } from './reader.js';

export interface Publish5 {
  /** '' when the publish names its topic by alias only. */
  topic: string;
  qos: 0 | 1 | 2;
  retain: boolean;
  dup: boolean;
  /** 0 for QoS 0 */
  messageId: number;
  properties: Properties;
  /** a view into the body */
  payload: Buffer;
}

/** Reads an MQTT 5 PUBLISH; the topic may be empty when a topic alias names it [MQTT-3.3.2-8]. */
export function readPublish5(first: number, body: Buffer): Publish5 {
  const qos = (first >> 1) & 3;
  if (qos === 3) throw new MalformedPacket('PUBLISH with QoS 3 [MQTT-3.3.1-4]');
  const r = new BodyReader(body);
  const topic = r.string();
  if (topic.includes('+') || topic.includes('#'))
    throw new MalformedPacket('PUBLISH topic has a wildcard [MQTT-3.3.2-2]', ReasonCode.TOPIC_NAME_INVALID);
  const messageId = qos > 0 ? r.u16() : 0;
  if (qos > 0 && messageId === 0) throw new MalformedPacket('PUBLISH with message id 0 [MQTT-2.2.1-3]');
  const properties = readProperties(r, ALLOWED.PUBLISH);
  if (topic.length === 0 && properties.topicAlias === undefined)
    throw new MalformedPacket('PUBLISH with neither a topic nor a topic alias', ReasonCode.PROTOCOL_ERROR);
  return {
    topic,
    qos: qos as 0 | 1 | 2,
    retain: (first & 0x01) !== 0,
    dup: (first & 0x08) !== 0,
    messageId,
    properties,
    payload: body.subarray(r.pos),
  };
}

/** Reads the message id of a PUBREL (reason code and properties may follow; none changes what the broker does). */
export function readPubrel5(body: Buffer): number {
  const r = new BodyReader(body);
  const id = r.u16();
  if (r.left > 0) r.byte();
  if (r.left > 0) readProperties(r, ALLOWED.ACK);
  return id;
}

export interface SubscribeFilter5 {
  topic: string;
  qos: number;
  noLocal: boolean;
}

/** Reads an MQTT 5 SUBSCRIBE: message id, properties and filters with their options [MQTT-3.8.3.1]. */
export function readSubscribe5(body: Buffer): {
  messageId: number;
  properties: Properties;
  filters: SubscribeFilter5[];
} {
  const r = new BodyReader(body);
  const messageId = r.u16();
  const properties = readProperties(r, ALLOWED.SUBSCRIBE);
  const filters: SubscribeFilter5[] = [];
  while (r.left > 0) {
    const topic = r.string();
    const options = r.byte();
    if ((options & 0xc0) !== 0) throw new MalformedPacket('SUBSCRIBE options reserved bits set [MQTT-3.8.3-5]');
    if ((options & 3) === 3) throw new MalformedPacket('SUBSCRIBE asks for QoS 3 [MQTT-3.8.3-4]');
    if (((options >> 4) & 3) === 3) throw new MalformedPacket('SUBSCRIBE retain handling 3 [MQTT-3.8.3-5]');
    filters.push({ topic, qos: options & 3, noLocal: (options & 0x04) !== 0 });
  }
  if (filters.length === 0) throw new MalformedPacket('SUBSCRIBE without a filter [MQTT-3.8.3-2]');
  return { messageId, properties, filters };
}

/** Reads an MQTT 5 UNSUBSCRIBE: message id and filters. */
export function readUnsubscribe5(body: Buffer): { messageId: number; filters: string[] } {
  const r = new BodyReader(body);
  const messageId = r.u16();
  readProperties(r, ALLOWED.UNSUBSCRIBE);
  const filters: string[] = [];
  while (r.left > 0) {
    const topic = r.string();
    if (!validFilter(topic)) throw new MalformedPacket(`topic filter ${JSON.stringify(topic)} is not valid`);
    filters.push(topic);
  }
  if (filters.length === 0) throw new MalformedPacket('UNSUBSCRIBE without a filter [MQTT-3.10.3-2]');
  return { messageId, filters };
}

/** Reads an MQTT 5 DISCONNECT from a client: its reason code (0 when absent) and properties. */
export function readDisconnect5(body: Buffer): { reasonCode: number; properties: Properties } {
  if (body.length === 0) return { reasonCode: 0, properties: {} };
  const r = new BodyReader(body);
  const reasonCode = r.byte();
  const properties = r.left > 0 ? readProperties(r, ALLOWED.DISCONNECT) : {};
  return { reasonCode, properties };
}

function packet(first: number, parts: readonly (Uint8Array | number[])[]): Buffer {
  let remaining = 0;
  for (const p of parts) remaining += p.length;
  const b = Buffer.allocUnsafe(1 + varintLength(remaining) + remaining);
  b[0] = first;
  let pos = writeVarint(b, 1, remaining);
  for (const p of parts) {
    if (p instanceof Uint8Array) b.set(p, pos);
    else for (let i = 0; i < p.length; i++) b[pos + i] = p[i];
    pos += p.length;
  }
  return b;
}

function u16(n: number): number[] {
  return [(n >> 8) & 0xff, n & 0xff];
}

export function connack5(reasonCode: number, sessionPresent: boolean, props: readonly OutProperty[]): Buffer {
  return packet(0x20, [[sessionPresent ? 1 : 0, reasonCode], writeProperties(props)]);
}

/**
 * PUBACK, PUBREC or PUBCOMP with a reason code; with reason 0 and no reason string it is the short 3.1.1 form
 * [MQTT-3.4.2.1]. PUBREL is never sent by this broker.
 */
export function ack5(type: number, messageId: number, reasonCode: number, reasonString?: string): Buffer {
  if (reasonCode === 0 && reasonString === undefined) return packet(type << 4, [u16(messageId)]);
  if (reasonString === undefined) return packet(type << 4, [[...u16(messageId), reasonCode]]);
  return packet(type << 4, [[...u16(messageId), reasonCode], writeProperties([[0x1f, reasonString]])]);
}

export function suback5(messageId: number, codes: readonly number[]): Buffer {
  return packet(PacketType.SUBACK << 4, [[...u16(messageId), 0], [...codes]]);
}

export function unsuback5(messageId: number, codes: readonly number[]): Buffer {
  return packet(PacketType.UNSUBACK << 4, [[...u16(messageId), 0], [...codes]]);
}

export function disconnect5(reasonCode: number, reasonString?: string): Buffer {
  return packet(PacketType.DISCONNECT << 4, [
    [reasonCode],
    writeProperties(reasonString === undefined ? [] : [[0x1f, reasonString]]),
  ]);
}

/** An MQTT 5 PUBLISH without properties; `messageId` is written for QoS 1 and 2. */
export function publish5(topic: string, payload: Uint8Array, qos: 0 | 1 | 2 = 0, messageId = 0): Buffer {
  const t = Buffer.from(topic, 'utf8');
  const head = [...u16(t.length)];
  const id = qos > 0 ? u16(messageId) : [];
  return packet((PacketType.PUBLISH << 4) | (qos << 1), [head, t, [...id, 0], payload]);
}
