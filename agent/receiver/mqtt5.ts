import type { Client } from 'aedes';
import {
  MalformedPacket,
  PacketType,
  PINGRESP,
  validFilter,
  type ConnectPacket,
  type WillMessage,
} from '../../protocol/mqtt/frames.js';
import type { ConnectionRefusal } from './broker.js';
import { fitReasonString, ReasonCode, type OutProperty } from '../../protocol/mqtt/properties.js';
import {
  ack5,
  connack5,
  disconnect5,
  readDisconnect5,
  readPublish5,
  readPubrel5,
  readSubscribe5,
  readUnsubscribe5,
  suback5,
  unsuback5,
} from '../../protocol/mqtt/v5.js';
import { CLOSED, Session5, type DeviceSession, type PendingAck } from './device-session.js';
import type { DeviceSessions } from './device-sessions.js';
import type { Refusal } from './message.js';

export interface Mqtt5Config {
  /** QoS 1 and 2 publishes a client may have unanswered at once (advertised in CONNACK, enforced). */
  receiveMaximum: number;
  /** Inbound topic aliases a connection may set (advertised; 0 = none). */
  topicAliasMaximum: number;
  /** seconds: the longest a session outlives its connection, whatever the client asks. */
  maxSessionExpiry: number;
  /** Sessions kept for disconnected clients at most (the oldest is dropped past it). */
  maxStoredSessions: number;
  /** Largest packet taken in, advertised as Maximum Packet Size. */
  maxPacketBytes: number;
}

/** Longest topic an alias is kept for: device topics are far shorter; the bound caps a connection's alias memory. */
const MAX_ALIASED_TOPIC = 1024;

/** What a disconnected client's session keeps until it expires: QoS 0 deliveries are not queued (as mosquitto). */
interface StoredSession {
  subs: string[];
  noLocal: string[];
  qos2: number[];
  expires: number;
}

/** MQTT 5 reason codes for the refusals a message can meet after its topic is known. */
const REFUSAL_CODES: Record<Refusal['kind'] | 'not_authorized' | 'quota_exceeded', number> = {
  payload_format_invalid: ReasonCode.PAYLOAD_FORMAT_INVALID,
  topic_name_invalid: ReasonCode.TOPIC_NAME_INVALID,
  not_authorized: ReasonCode.NOT_AUTHORIZED,
  quota_exceeded: ReasonCode.QUOTA_EXCEEDED,
};

/** The MQTT 5 DISCONNECT reason code for each way the broker ends a connection. */
export const DISCONNECT_CODES: Record<ConnectionRefusal, number> = {
  max_connections: ReasonCode.SERVER_UNAVAILABLE,
  packet_too_large: ReasonCode.PACKET_TOO_LARGE,
  protocol_error: ReasonCode.PROTOCOL_ERROR,
  keepalive_timeout: ReasonCode.KEEP_ALIVE_TIMEOUT,
  connect_timeout: ReasonCode.MALFORMED_PACKET,
  slow_reader: ReasonCode.UNSPECIFIED_ERROR,
  early_packets: ReasonCode.PROTOCOL_ERROR,
  memory_limit: ReasonCode.SERVER_UNAVAILABLE,
};

/** CONNACK reason codes for the 3.1.1 return codes the authorizer gives [MQTT-3.2.2.3]. */
const LOGIN_REFUSALS: Record<number, number> = {
  2: ReasonCode.CLIENT_ID_NOT_VALID,
  3: ReasonCode.SERVER_UNAVAILABLE,
  4: ReasonCode.BAD_USERNAME_OR_PASSWORD,
  5: ReasonCode.NOT_AUTHORIZED,
};

/**
 * MQTT 5 on the lean device-session path: CONNACK with what this broker does (receive maximum, topic alias maximum,
 * maximum packet size, no retained messages, no shared subscriptions, no subscription identifiers, the session expiry
 * it grants), PUBACK and PUBREC with reason codes for every refusal, inbound topic aliases, the receive maximum
 * enforced, wills (with their delay) and sessions that outlive a connection for a bounded time (subscriptions and
 * QoS 2 state; the agent delivers at QoS 0 only, so nothing else is queued).
 */
export class Mqtt5 {
  private readonly stored = new Map<string, StoredSession>();
  /** Wills waiting for their delay, by client id: `fire` publishes at once (the session ended sooner). */
  private readonly wills = new Map<string, { timer: NodeJS.Timeout; fire: () => void }>();

  constructor(
    private readonly host: DeviceSessions,
    private readonly cfg: Mqtt5Config,
  ) {}

  /** Checks a CONNECT before its login and starts the session's MQTT 5 state; false when it was refused. */
  admit(s: DeviceSession, c: ConnectPacket): boolean {
    const p = c.properties ?? {};
    s.v5 = new Session5(
      Math.min(p.sessionExpiry ?? 0, this.cfg.maxSessionExpiry),
      p.requestProblemInfo !== 0,
      p.maximumPacketSize ?? Number.MAX_SAFE_INTEGER,
      c.willMessage ?? null,
    );
    if (p.authMethod !== undefined)
      return this.refuseConnect(
        s,
        ReasonCode.BAD_AUTHENTICATION_METHOD,
        `authentication method ${JSON.stringify(p.authMethod)} is not supported: log in with a username and password or a TLS client certificate`,
      );
    if (c.willMessage?.retain)
      return this.refuseConnect(
        s,
        ReasonCode.RETAIN_NOT_SUPPORTED,
        'a retained will is not supported: this broker keeps no retained messages [MQTT-3.2.2-13]',
      );
    return true;
  }

  private refuseConnect(s: DeviceSession, code: number, reason: string): false {
    s.conn.end(connack5(code, false, s.v5?.problemInfo ? [[0x1f, reason]] : []));
    s.state = CLOSED;
    return false;
  }

  /** The login was refused with a 3.1.1 return code: CONNACK with its MQTT 5 reason code, then the close. */
  loginRefused(s: DeviceSession, returnCode: number): void {
    this.refuseConnect(s, LOGIN_REFUSALS[returnCode] ?? ReasonCode.NOT_AUTHORIZED, 'login refused');
  }

  /** Logged in: a waiting will cancelled or sent, the session restored or started, CONNACK written. */
  connected(s: DeviceSession, c: ConnectPacket, assigned: boolean): void {
    const v5 = s.v5!;
    const will = this.wills.get(s.id);
    if (will !== undefined) {
      this.wills.delete(s.id);
      clearTimeout(will.timer);
      if (c.clean) will.fire(); // the old session ends now: its will goes now [MQTT-3.1.3-9]
    }
    const old = this.stored.get(s.id);
    this.stored.delete(s.id);
    const present = !c.clean && old !== undefined && old.expires > Date.now();
    if (present) {
      for (const f of old.subs) this.host.subscriptions.add(s, f);
      if (old.noLocal.length > 0) v5.noLocal = new Set(old.noLocal);
      if (old.qos2.length > 0) s.qos2 = new Set(old.qos2);
    }
    const requested = c.properties?.sessionExpiry ?? 0;
    const props: OutProperty[] = [
      [0x21, this.cfg.receiveMaximum],
      [0x22, this.cfg.topicAliasMaximum],
      [0x27, this.cfg.maxPacketBytes],
      [0x25, 0], // retain not available: the agent keeps no retained messages
      [0x29, 0], // subscription identifiers not available
      [0x2a, 0], // shared subscriptions not available
    ];
    if (v5.sessionExpiry !== requested) props.push([0x11, v5.sessionExpiry]);
    if (assigned) props.push([0x12, s.id]);
    s.write(connack5(0, present, props));
  }

  /** One packet after CONNACK; false stops reading (the connection is closing). */
  packet(s: DeviceSession, first: number, body: Buffer): boolean {
    switch (first >> 4) {
      case PacketType.PUBLISH:
        this.received(s, first, body);
        return true;
      case PacketType.PUBREL: {
        if ((first & 0x0f) !== 0x02) throw new MalformedPacket('PUBREL flags are not 0010 [MQTT-3.6.1-1]');
        const id = readPubrel5(body);
        const known = s.qos2?.delete(id) === true;
        if (known) s.v5!.inflight = Math.max(0, s.v5!.inflight - 1);
        s.write(ack5(PacketType.PUBCOMP, id, known ? 0 : 0x92)); // 0x92: packet identifier not found
        return true;
      }
      case PacketType.SUBSCRIBE:
        if ((first & 0x0f) !== 0x02) throw new MalformedPacket('SUBSCRIBE flags are not 0010 [MQTT-3.8.1-1]');
        this.subscribe(s, body);
        return true;
      case PacketType.UNSUBSCRIBE: {
        if ((first & 0x0f) !== 0x02) throw new MalformedPacket('UNSUBSCRIBE flags are not 0010 [MQTT-3.10.1-1]');
        const { messageId, filters } = readUnsubscribe5(body);
        const codes = filters.map((f) => (s.subs?.has(f) ? 0 : ReasonCode.NO_SUBSCRIPTION_EXISTED));
        this.host.subscriptions.remove(s, filters);
        for (const f of filters) s.v5!.noLocal?.delete(f);
        s.write(unsuback5(messageId, codes));
        return true;
      }
      case PacketType.PINGREQ:
        s.write(PINGRESP);
        return true;
      case PacketType.DISCONNECT:
        return this.disconnect(s, body);
      case PacketType.PUBACK:
      case PacketType.PUBREC:
      case PacketType.PUBCOMP:
        return true; // nothing is sent to devices above QoS 0
      default:
        // a second CONNECT, AUTH (no enhanced authentication was agreed), or a packet only a server sends
        throw new MalformedPacket(`packet type ${first >> 4} is not expected here`, ReasonCode.PROTOCOL_ERROR);
    }
  }

  private received(s: DeviceSession, first: number, body: Buffer): void {
    const p = readPublish5(first, body);
    const v5 = s.v5!;
    let topic = p.topic;
    const alias = p.properties.topicAlias;
    if (alias !== undefined) {
      if (alias === 0 || alias > this.cfg.topicAliasMaximum)
        throw new MalformedPacket(
          `topic alias ${alias} is outside 1..${this.cfg.topicAliasMaximum} (the Topic Alias Maximum in CONNACK)`,
          ReasonCode.TOPIC_ALIAS_INVALID,
        );
      if (topic.length > MAX_ALIASED_TOPIC)
        throw new MalformedPacket(
          `a topic of ${topic.length} characters for alias ${alias}: aliases are kept for topics up to ${MAX_ALIASED_TOPIC}`,
          ReasonCode.TOPIC_ALIAS_INVALID,
        );
      if (topic.length > 0) (v5.aliases ??= new Map()).set(alias, topic);
      else {
        const known = v5.aliases?.get(alias);
        if (known === undefined)
          throw new MalformedPacket(`topic alias ${alias} was never set on this connection`, ReasonCode.PROTOCOL_ERROR);
        topic = known;
      }
    }
    if (p.retain)
      throw new MalformedPacket(
        'a retained PUBLISH, after CONNACK said Retain Available 0',
        ReasonCode.RETAIN_NOT_SUPPORTED,
      );
    let ack: PendingAck | null = null;
    if (p.qos > 0) {
      ack = s.pendingAck(p.qos === 1 ? PacketType.PUBACK : PacketType.PUBREC, p.messageId);
      if (p.qos === 2 && s.qos2?.has(p.messageId)) return s.settle(ack); // stored already; PUBREC again
      if (++v5.inflight > this.cfg.receiveMaximum)
        throw new MalformedPacket(
          `more than ${this.cfg.receiveMaximum} QoS 1 and 2 publishes unanswered (the Receive Maximum in CONNACK)`,
          ReasonCode.RECEIVE_MAXIMUM_EXCEEDED,
        );
      if (p.qos === 2) (s.qos2 ??= new Set()).add(p.messageId);
    }
    const props = p.properties;
    this.host.deliver(
      s,
      { topic, payload: p.payload, qos: p.qos, contentType: props.contentType, userProperties: props.userProperties },
      ack,
      p.messageId,
    );
  }

  /**
   * Writes the ack of a settled message: success, or the reason code of its refusal with a reason string when the
   * client asked for problem information.
   */
  answer(
    s: DeviceSession,
    ack: PendingAck,
    qos: 1 | 2,
    messageId: number,
    refusal?: { kind: keyof typeof REFUSAL_CODES; message: string },
  ): void {
    const v5 = s.v5!;
    if (qos === 1 || refusal !== undefined) v5.inflight = Math.max(0, v5.inflight - 1);
    if (refusal === undefined) return s.settle(ack);
    if (qos === 2) s.qos2?.delete(messageId); // a refused QoS 2 flow ends at its PUBREC [MQTT-4.3.3]
    const type = qos === 1 ? PacketType.PUBACK : PacketType.PUBREC;
    const reason = v5.problemInfo ? fitReasonString(refusal.message, Math.min(v5.maxPacket - 16, 1024)) : undefined;
    s.settle(ack, ack5(type, messageId, REFUSAL_CODES[refusal.kind], reason));
  }

  private subscribe(s: DeviceSession, body: Buffer): void {
    const { messageId, properties, filters } = readSubscribe5(body);
    if (properties.subscriptionId !== undefined)
      throw new MalformedPacket(
        'a subscription identifier, after CONNACK said they are not available',
        ReasonCode.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
      );
    const codes = new Array<number>(filters.length);
    let left = filters.length;
    const done = () => {
      if (--left === 0 && s.state !== CLOSED) s.write(suback5(messageId, codes));
    };
    filters.forEach((f, i) => {
      if (f.topic.startsWith('$share/')) {
        codes[i] = ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED;
        return done();
      }
      if (!validFilter(f.topic)) {
        codes[i] = ReasonCode.TOPIC_FILTER_INVALID;
        return done();
      }
      this.host.auth.authorizeSubscribe(s as unknown as Client, f, (err, sub) => {
        if (s.state === CLOSED) return;
        if (err || !sub) codes[i] = ReasonCode.NOT_AUTHORIZED;
        else {
          codes[i] = 0; // granted QoS 0: this path delivers at QoS 0 only [MQTT-3.9.3 allows less than asked]
          this.host.subscriptions.add(s, sub.topic);
          if (f.noLocal) (s.v5!.noLocal ??= new Set()).add(sub.topic);
          else s.v5!.noLocal?.delete(sub.topic);
        }
        done();
      });
    });
  }

  private disconnect(s: DeviceSession, body: Buffer): false {
    const { reasonCode, properties } = readDisconnect5(body);
    const v5 = s.v5!;
    if (properties.sessionExpiry !== undefined) {
      if (v5.sessionExpiry === 0 && properties.sessionExpiry > 0)
        throw new MalformedPacket(
          'DISCONNECT sets a session expiry on a session that had none [MQTT-3.14.2-2]',
          ReasonCode.PROTOCOL_ERROR,
        );
      v5.sessionExpiry = Math.min(properties.sessionExpiry, this.cfg.maxSessionExpiry);
    }
    if (reasonCode !== ReasonCode.DISCONNECT_WITH_WILL) v5.willCleared = true; // [MQTT-3.1.2-10]
    s.conn.end();
    s.state = CLOSED;
    return false;
  }

  /** Writes DISCONNECT with `code` and closes the connection. */
  closeWith(s: DeviceSession, code: number, reason?: string): void {
    const text = reason !== undefined && s.v5?.problemInfo ? fitReasonString(reason, 512) : undefined;
    s.conn.end(disconnect5(code, text));
    s.state = CLOSED;
  }

  /** The connection ended: its session kept for its expiry, its will sent now or after its delay. */
  ended(s: DeviceSession): void {
    const v5 = s.v5!;
    if (v5.sessionExpiry > 0 && s.id !== '') {
      if (this.stored.size >= this.cfg.maxStoredSessions) this.stored.delete(this.stored.keys().next().value!);
      this.stored.set(s.id, {
        subs: [...(s.subs?.keys() ?? [])],
        noLocal: [...(v5.noLocal ?? [])],
        qos2: [...(s.qos2 ?? [])],
        expires: Date.now() + v5.sessionExpiry * 1000,
      });
    }
    const will = v5.will;
    if (will === null || v5.willCleared) return;
    const delay = Math.min(will.properties?.willDelay ?? 0, v5.sessionExpiry);
    if (delay === 0) return this.publishWill(s, will);
    this.wills.get(s.id)?.fire();
    // Bounded as stored sessions are: past it, the oldest waiting will goes now.
    if (this.wills.size >= this.cfg.maxStoredSessions) this.wills.values().next().value?.fire();
    const fire = () => {
      clearTimeout(timer);
      if (this.wills.get(s.id)?.fire === fire) this.wills.delete(s.id);
      this.publishWill(s, will);
    };
    const timer = setTimeout(fire, delay * 1000).unref();
    this.wills.set(s.id, { timer, fire });
  }

  /** Publishes the will of a session that ended without DISCONNECT: as a message the device sent. */
  private publishWill(s: DeviceSession, will: WillMessage): void {
    if (!this.host.auth.mayPublish(s as unknown as Client, will.topic)) {
      this.host.hooks.onPublishRefused?.(this.host.auth.identityOf(s), will.topic);
      return;
    }
    const p = will.properties;
    const msg = { topic: will.topic, payload: will.payload, qos: will.qos, contentType: p?.contentType };
    this.host.sink(p?.userProperties ? { ...msg, userProperties: p.userProperties } : msg, (err, refusal) => {
      if (!err && refusal === undefined) this.host.hooks.relay(will.topic, will.payload, will.qos, s);
    });
  }

  /** Drops sessions past their expiry. */
  sweep(now: number): void {
    for (const [id, st] of this.stored) if (st.expires <= now) this.stored.delete(id);
  }

  /** Stops: wills still waiting are not sent (the agent, their consumer, is stopping). */
  stop(): void {
    for (const w of this.wills.values()) clearTimeout(w.timer);
    this.wills.clear();
  }
}
