/**
 * MQTT 5 properties [MQTT-2.2.2] and reason codes: reading the property list of a packet a client sent (each
 * property checked to be one that packet may carry, single-valued ones at most once) and writing the lists the
 * server sends.
 */
import { BodyReader, MalformedPacket, varintLength, writeVarint } from './reader.js';

/** The reason codes the broker sends [MQTT-2.4]. */
export const ReasonCode = {
  SUCCESS: 0x00,
  NO_SUBSCRIPTION_EXISTED: 0x11,
  DISCONNECT_WITH_WILL: 0x04,
  UNSPECIFIED_ERROR: 0x80,
  MALFORMED_PACKET: 0x81,
  PROTOCOL_ERROR: 0x82,
  UNSUPPORTED_PROTOCOL_VERSION: 0x84,
  CLIENT_ID_NOT_VALID: 0x85,
  BAD_USERNAME_OR_PASSWORD: 0x86,
  NOT_AUTHORIZED: 0x87,
  SERVER_UNAVAILABLE: 0x88,
  SERVER_SHUTTING_DOWN: 0x8b,
  BAD_AUTHENTICATION_METHOD: 0x8c,
  KEEP_ALIVE_TIMEOUT: 0x8d,
  SESSION_TAKEN_OVER: 0x8e,
  TOPIC_FILTER_INVALID: 0x8f,
  TOPIC_NAME_INVALID: 0x90,
  RECEIVE_MAXIMUM_EXCEEDED: 0x93,
  TOPIC_ALIAS_INVALID: 0x94,
  PACKET_TOO_LARGE: 0x95,
  QUOTA_EXCEEDED: 0x97,
  ADMINISTRATIVE_ACTION: 0x98,
  PAYLOAD_FORMAT_INVALID: 0x99,
  RETAIN_NOT_SUPPORTED: 0x9a,
  SHARED_SUBSCRIPTIONS_NOT_SUPPORTED: 0x9e,
  SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED: 0xa1,
} as const;

/** The properties a client may send, by name. `userProperties` keep their order; a key may repeat. */
export interface Properties {
  payloadFormat?: number;
  messageExpiry?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  subscriptionId?: number;
  sessionExpiry?: number;
  authMethod?: string;
  authData?: Buffer;
  requestProblemInfo?: number;
  willDelay?: number;
  requestResponseInfo?: number;
  serverReference?: string;
  reasonString?: string;
  receiveMaximum?: number;
  topicAliasMaximum?: number;
  topicAlias?: number;
  maximumPacketSize?: number;
  userProperties?: [string, string][];
}

type Kind = 'byte' | 'u16' | 'u32' | 'varint' | 'string' | 'binary' | 'pair';

/** Property identifier → its name and type [MQTT-2.2.2.2]. */
const PROPERTIES: Record<number, [keyof Properties, Kind]> = {
  0x01: ['payloadFormat', 'byte'],
  0x02: ['messageExpiry', 'u32'],
  0x03: ['contentType', 'string'],
  0x08: ['responseTopic', 'string'],
  0x09: ['correlationData', 'binary'],
  0x0b: ['subscriptionId', 'varint'],
  0x11: ['sessionExpiry', 'u32'],
  0x15: ['authMethod', 'string'],
  0x16: ['authData', 'binary'],
  0x17: ['requestProblemInfo', 'byte'],
  0x18: ['willDelay', 'u32'],
  0x19: ['requestResponseInfo', 'byte'],
  0x1c: ['serverReference', 'string'],
  0x1f: ['reasonString', 'string'],
  0x21: ['receiveMaximum', 'u16'],
  0x22: ['topicAliasMaximum', 'u16'],
  0x23: ['topicAlias', 'u16'],
  0x26: ['userProperties', 'pair'],
  0x27: ['maximumPacketSize', 'u32'],
};

/** The properties each packet from a client may carry [MQTT-3.x.2.2]. */
export const ALLOWED = {
  CONNECT: new Set([0x11, 0x21, 0x27, 0x22, 0x19, 0x17, 0x26, 0x15, 0x16]),
  WILL: new Set([0x18, 0x01, 0x02, 0x03, 0x08, 0x09, 0x26]),
  PUBLISH: new Set([0x01, 0x02, 0x23, 0x08, 0x09, 0x26, 0x03]),
  ACK: new Set([0x1f, 0x26]),
  SUBSCRIBE: new Set([0x0b, 0x26]),
  UNSUBSCRIBE: new Set([0x26]),
  DISCONNECT: new Set([0x11, 0x1f, 0x26, 0x1c]),
} as const;

const NONE: Properties = Object.freeze({});

/** Properties whose value must be 0 or 1, and those that must not be 0 [MQTT-3.1.2-21, MQTT-3.1.2-24…]. */
const ZERO_OR_ONE = new Set<keyof Properties>(['payloadFormat', 'requestProblemInfo', 'requestResponseInfo']);
const NOT_ZERO = new Set<keyof Properties>(['receiveMaximum', 'maximumPacketSize', 'subscriptionId']);

/** Reads a property list at the reader's position; a packet without properties costs one byte read. */
export function readProperties(r: BodyReader, allowed: ReadonlySet<number>): Properties {
  const length = r.varint();
  if (length === 0) return NONE;
  const end = r.pos + length;
  if (end > r.body.length) throw new MalformedPacket('the property list runs past the packet');
  const props: Properties = {};
  while (r.pos < end) {
    const id = r.varint();
    const spec = PROPERTIES[id];
    if (spec === undefined || !allowed.has(id))
      throw new MalformedPacket(`property 0x${id.toString(16)} is not allowed here`, ReasonCode.PROTOCOL_ERROR);
    const [name, kind] = spec;
    if (kind === 'pair') {
      (props.userProperties ??= []).push([r.string(), r.string()]);
      continue;
    }
    if (props[name] !== undefined)
      throw new MalformedPacket(`property ${name} appears twice [MQTT-2.2.2-2]`, ReasonCode.PROTOCOL_ERROR);
    const value =
      kind === 'byte'
        ? r.byte()
        : kind === 'u16'
          ? r.u16()
          : kind === 'u32'
            ? r.u32()
            : kind === 'varint'
              ? r.varint()
              : kind === 'string'
                ? r.string()
                : Buffer.from(r.bytes());
    if (ZERO_OR_ONE.has(name) && value !== 0 && value !== 1)
      throw new MalformedPacket(`property ${name} is ${String(value)}, not 0 or 1`, ReasonCode.PROTOCOL_ERROR);
    if (NOT_ZERO.has(name) && value === 0)
      throw new MalformedPacket(`property ${name} is 0`, ReasonCode.PROTOCOL_ERROR);
    (props as Record<string, unknown>)[name] = value;
  }
  if (r.pos !== end) throw new MalformedPacket('a property runs past the property list');
  return props;
}

/** A property the server writes: identifier and value (a number for byte/u16/u32 kinds). */
export type OutProperty = [id: number, value: number | string];

const OUT_KINDS: Record<number, 'byte' | 'u16' | 'u32' | 'string'> = {
  0x11: 'u32', // session expiry interval
  0x12: 'string', // assigned client identifier
  0x13: 'u16', // server keep alive
  0x1f: 'string', // reason string
  0x21: 'u16', // receive maximum
  0x22: 'u16', // topic alias maximum
  0x24: 'byte', // maximum QoS
  0x25: 'byte', // retain available
  0x27: 'u32', // maximum packet size
  0x28: 'byte', // wildcard subscription available
  0x29: 'byte', // subscription identifiers available
  0x2a: 'byte', // shared subscription available
};

/** The encoded property list (length first) for `props`. */
export function writeProperties(props: readonly OutProperty[]): Buffer {
  let length = 0;
  const strings: (Buffer | null)[] = props.map(([id, v]) => {
    const kind = OUT_KINDS[id];
    if (kind === undefined) throw new Error(`no writer for property 0x${id.toString(16)}`);
    if (kind === 'string') {
      const b = Buffer.from(String(v), 'utf8');
      length += 1 + 2 + b.length;
      return b;
    }
    length += 1 + (kind === 'byte' ? 1 : kind === 'u16' ? 2 : 4);
    return null;
  });
  const out = Buffer.allocUnsafe(varintLength(length) + length);
  let pos = writeVarint(out, 0, length);
  props.forEach(([id, v], i) => {
    out[pos++] = id;
    const kind = OUT_KINDS[id];
    if (kind === 'string') {
      const b = strings[i]!;
      out.writeUInt16BE(b.length, pos);
      pos += 2 + b.copy(out, pos + 2);
    } else if (kind === 'byte') out[pos++] = v as number;
    else if (kind === 'u16') pos = out.writeUInt16BE(v as number, pos);
    else pos = out.writeUInt32BE(v as number, pos);
  });
  return out;
}

/** A reason string cut to fit a packet of at most `room` bytes (whole UTF-8 characters). */
export function fitReasonString(text: string, room: number): string {
  if (Buffer.byteLength(text) <= room) return text;
  let cut = text.slice(0, Math.max(0, room));
  while (cut.length > 0 && Buffer.byteLength(cut) > room) cut = cut.slice(0, -1);
  return cut;
}
