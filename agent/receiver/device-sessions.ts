import type { Admission } from '../../runtime/processors/memory-limiter.js';
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Client } from 'aedes';
import {
  connackPacket,
  MalformedPacket,
  PacketType,
  readConnect,
  type ConnectPacket,
} from '../../protocol/mqtt/frames.js';
import { ReasonCode } from '../../protocol/mqtt/properties.js';
import { connack5 } from '../../protocol/mqtt/v5.js';
import { DISCONNECT_CODES, Mqtt5, type Mqtt5Config } from './mqtt5.js';
import { Mqtt311 } from './mqtt311.js';
import type { PublishRate } from './publish-rate.js';
import { SessionSubscriptions } from './session-subscriptions.js';
import {
  AUTHENTICATING,
  AWAITING_CONNECT,
  CLOSED,
  CONNECTED,
  DeviceSession,
  type PendingAck,
  type SessionHost,
} from './device-session.js';
import { TurnBudget } from './turn-budget.js';
import type { BrokerAuth, BrokerHooks, ConnectionRefusal } from './broker.js';
import type { InboundMessage, Refusal, Settled } from './message.js';

export interface DeviceSessionsConfig extends Mqtt5Config {
  /** Largest packet taken in, checked on the fixed header before the body is buffered. */
  maxPacketBytes: number;
  /** mqtt.broker.max_publish_rate, per connection. */
  rate: PublishRate;
  /** ms a connection may take to send CONNECT. */
  connectTimeoutMs: number;
  /** The memory limiter, when configured: new logins and further reads wait while it refuses. */
  admission?: Admission;
}

/** Packets a device may send after CONNECT while its login is checked; more closes the connection. */
const MAX_EARLY_PACKETS = 1000;
/** ms of device input read per event-loop turn before the rest waits for the next (TurnBudget). */
const TURN_BUDGET_MS = 10;
/** ms between sweeps for keep-alive and CONNECT timeouts. */
const SWEEP_MS = 1000;

/**
 * The lean device-session path of the embedded broker: MQTT 3.1.1 and 3.1 connections with a clean session and no
 * will — what a telemetry device opens — are served here with a socket, a frame splitter and a dozen fields each,
 * instead of aedes' per-client streams, parser, timers and closures (measured: aedes alone holds about 3 × a bare Node
 * socket server's memory at 10,000 devices). A 3.1.1 connection with a will or a persistent session is handed to aedes
 * with its CONNECT unread, so aedes serves it exactly as before. Every MQTT 5 connection is served here (mqtt5.ts):
 * aedes 1.x speaks no MQTT 5.
 *
 * Devices on this path may subscribe (the authorizer lets a device subscribe to its errors topic): the agent's own
 * reports reach them at QoS 0 through `publish`, which is all the agent ever publishes. Durable before ack holds as
 * on the aedes path: PUBACK (QoS 1) and PUBREC (QoS 2) are written only once the sink says the message is stored,
 * and in the order the messages came.
 */
export class DeviceSessions implements SessionHost {
  private readonly byId = new Map<string, DeviceSession>();
  private readonly open = new Set<DeviceSession>();
  readonly subscriptions = new SessionSubscriptions();
  private readonly mqtt5: Mqtt5;
  private readonly mqtt311 = new Mqtt311(this);
  private clock = Date.now();
  /** Sessions written to in this tick: a group commit settles thousands of messages at once, and each session's
   *  acks leave in one write instead of one syscall per ack. */
  private corked: DeviceSession[] = [];
  private readonly turns = new TurnBudget<DeviceSession>(TURN_BUDGET_MS, (s, chunk) => this.take(s, chunk));
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    readonly cfg: DeviceSessionsConfig,
    readonly auth: BrokerAuth,
    readonly sink: (msg: InboundMessage, done: Settled) => void,
    readonly hooks: BrokerHooks & {
      /** A connection this path does not serve, its bytes put back unread. */
      handOff(conn: Socket): void;
      /** A device logged in here: a session of the same client id elsewhere must close [MQTT-3.1.4-2]. */
      takeOver(clientId: string): void;
      onSessionCount(n: number): void;
      /** A device's message, stored: to whoever subscribed to its topic (`from` is the session that sent it). */
      relay(topic: string, payload: Buffer, qos: 0 | 1 | 2, from?: DeviceSession): void;
    },
  ) {
    this.mqtt5 = new Mqtt5(this, cfg);
  }

  cork(s: DeviceSession): void {
    s.corked = true;
    s.conn.cork();
    if (this.corked.push(s) === 1) process.nextTick(this.uncork);
  }

  private readonly uncork = (): void => {
    const corked = this.corked;
    this.corked = [];
    for (const s of corked) {
      s.corked = false;
      s.conn.uncork();
    }
  };

  /** Connected sessions. */
  get size(): number {
    return this.byId.size;
  }

  accept(conn: Socket): void {
    if (this.sweeper === null) {
      this.clock = Date.now();
      this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
      this.sweeper.unref();
    }
    const s = new DeviceSession(conn, this, this.clock);
    this.open.add(s);
    conn.setNoDelay?.(true); // not on a WebSocket stream
    conn.on('data', s.onData);
    conn.on('close', s.onClose);
    conn.on('error', noop); // 'close' follows
  }

  onData(s: DeviceSession, chunk: Buffer): void {
    if (s.state !== CONNECTED) return this.take(s, chunk); // before login: a CONNECT, and perhaps a hand-off
    s.lastSeen = this.clock;
    this.turns.offer(s, chunk);
  }

  /** Reads the packets in `chunk`. */
  private readonly take = (s: DeviceSession, chunk: Buffer): void => {
    s.raw?.push(chunk);
    const r = s.frames.push(chunk, s.onPacket);
    if (r === 'ok') return;
    this.refuse(s, r === 'too_large' ? 'packet_too_large' : 'protocol_error');
  };

  /** One packet; false stops the splitting (the connection was handed off or closed). */
  onPacket(s: DeviceSession, first: number, body: Buffer): boolean {
    try {
      switch (s.state) {
        case AWAITING_CONNECT:
          return this.connect(s, first, body);
        case AUTHENTICATING:
          if (s.early === null) s.early = [];
          if (s.early.length >= MAX_EARLY_PACKETS) return this.refuse(s, 'early_packets');
          s.early.push([first, Buffer.from(body)]);
          return true;
        case CONNECTED:
          return s.v5 !== null ? this.mqtt5.packet(s, first, body) : this.mqtt311.packet(s, first, body);
        default:
          return false;
      }
    } catch (err) {
      if (err instanceof MalformedPacket) return this.refuse(s, 'protocol_error', err); // [MQTT-4.8.0-1]
      throw err;
    }
  }

  onClose(s: DeviceSession): void {
    s.state = CLOSED;
    this.open.delete(s);
    this.retire(s);
  }

  /** A logged-in session ends: its subscriptions dropped; an MQTT 5 one keeps its state or sends its will. */
  private retire(s: DeviceSession): void {
    if (s.retired) return;
    s.retired = true;
    const loggedIn = this.byId.get(s.id) === s;
    if (loggedIn && s.v5 !== null) this.mqtt5.ended(s); // reads its subscriptions: before they are dropped
    if (s.subs !== null) this.subscriptions.remove(s, s.subs.keys());
    if (!loggedIn) return;
    this.byId.delete(s.id);
    this.hooks.onSessionCount(this.byId.size);
  }

  private connect(s: DeviceSession, first: number, body: Buffer): boolean {
    if (first >> 4 !== PacketType.CONNECT) return this.refuse(s, 'protocol_error'); // [MQTT-3.1.0-1]
    if (this.cfg.admission?.refusing) {
      // Over the memory limit: "server unavailable" [MQTT-3.2.2.3], for every login (those aedes would serve too).
      this.hooks.onConnectionRefused?.('memory_limit');
      // The protocol level sits at byte 6 of an 'MQTT' CONNECT: an MQTT 5 client reads an MQTT 5 CONNACK (0x88).
      s.conn.end(body[6] === 5 ? connack5(ReasonCode.SERVER_UNAVAILABLE, false, []) : connackPacket(3));
      s.state = CLOSED;
      return false;
    }
    let c: ConnectPacket;
    try {
      c = readConnect(body);
    } catch (err) {
      if (err instanceof MalformedPacket) return this.handOff(s); // aedes answers it as it always did
      throw err;
    }
    const v5 = c.protocolLevel === 5 && c.protocolName === 'MQTT';
    const lean =
      (c.protocolLevel === 4 && c.protocolName === 'MQTT') || (c.protocolLevel === 3 && c.protocolName === 'MQIsdp');
    if (!v5 && (!lean || !c.clean || c.will)) return this.handOff(s);
    s.raw = null;
    if (v5 && !this.mqtt5.admit(s, c)) return false;
    s.state = AUTHENTICATING;
    s.keepalive = c.keepalive;
    const client = s as unknown as Client; // has the `id` and `conn` the authorizer reads
    if (c.clientId === '') {
      // As aedes does, and the authorizer knows an id of this form is generated, not chosen [MQTT-3.1.3-6].
      this.auth.preConnect(client, { clientId: '' }, noop);
      s.id = `aedes_${randomUUID()}`;
    } else s.id = c.clientId;
    const assigned = c.clientId === '';
    this.auth.authenticate(client, c.username, c.password, (err, ok) => this.authenticated(s, c, assigned, err, ok));
    return true;
  }

  private authenticated(
    s: DeviceSession,
    c: ConnectPacket,
    assigned: boolean,
    err: { returnCode?: number } | null,
    ok: boolean | null,
  ): void {
    if (s.state === CLOSED) return;
    if (err !== null || ok !== true) {
      // [MQTT-3.2.2-5]: a refusal is answered, then the connection closes (the sweep ends one left half open).
      if (s.v5 !== null) return this.mqtt5.loginRefused(s, err?.returnCode ?? 5);
      s.conn.end(connackPacket(err?.returnCode ?? 5));
      s.state = CLOSED;
      return;
    }
    const older = this.byId.get(s.id);
    if (older !== undefined) {
      this.retire(older); // its MQTT 5 session state kept now, for this login to take over
      if (older.v5 !== null) this.mqtt5.closeWith(older, ReasonCode.SESSION_TAKEN_OVER);
      this.close(older);
    }
    this.hooks.takeOver(s.id);
    this.byId.set(s.id, s);
    s.state = CONNECTED;
    s.lastSeen = this.clock;
    if (s.v5 !== null) this.mqtt5.connected(s, c, assigned);
    else s.write(connackPacket(0));
    this.hooks.onSessionCount(this.byId.size);
    const early = s.early;
    s.early = null;
    if (early !== null) for (const [first, body] of early) if (!s.onPacket(first, body)) return;
  }

  /**
   * A device's publish, read: checked against its ACL and rate, handed to the pipeline, acknowledged once stored or
   * refused for good. A refusal keeps the connection: MQTT 3.1.1 acknowledges and drops (the device hears why on its
   * errors topic), MQTT 5 says why in the ack's reason code.
   */
  deliver(s: DeviceSession, msg: InboundMessage, ack: PendingAck | null, messageId: number): void {
    const client = s as unknown as Client;
    if (!this.auth.mayPublish(client, msg.topic)) {
      this.hooks.onPublishRefused?.(this.auth.identityOf(s), msg.topic);
      return this.answer(s, ack, msg.qos, messageId, {
        kind: 'not_authorized',
        message: `this device may not publish to ${JSON.stringify(msg.topic.slice(0, 200))}`,
      });
    }
    const rate = this.cfg.rate.take(s);
    if (rate !== 'ok') {
      this.hooks.onQuotaExceeded?.(this.auth.identityOf(s), msg.topic, rate === 'first_over');
      return this.answer(s, ack, msg.qos, messageId, {
        kind: 'quota_exceeded',
        message: `over mqtt.broker.max_publish_rate (${this.cfg.rate.perSecond} messages a second)`,
      });
    }
    this.sink(msg, (err, refusal) => {
      if (err) {
        // Not stored: no ack, and the connection closes so the device sends it again.
        s.qos2?.delete(messageId);
        this.close(s);
        return;
      }
      this.answer(s, ack, msg.qos, messageId, refusal);
      if (refusal === undefined) this.hooks.relay(msg.topic, msg.payload as Buffer, msg.qos, s);
    });
    const admission = this.cfg.admission;
    if (ack !== null && admission?.refusing && !s.held) {
      // The sink holds this message until memory is back under the limit: read nothing more from the device until
      // then (TCP pushes back), so waiting costs one message per device, not whatever it keeps sending.
      s.held = true;
      s.pause();
      admission.whenAccepting(() => {
        s.held = false;
        s.lastSeen = this.clock; // it was not read, not silent
        s.resume();
      });
    }
  }

  private answer(
    s: DeviceSession,
    ack: PendingAck | null,
    qos: 0 | 1 | 2,
    messageId: number,
    refusal?: Refusal | { kind: 'not_authorized' | 'quota_exceeded'; message: string },
  ): void {
    if (ack === null) return;
    if (s.v5 !== null) this.mqtt5.answer(s, ack, qos as 1 | 2, messageId, refusal);
    else s.settle(ack);
  }

  /** Delivers one message (QoS 0) to every session on this path subscribed to `topic` (`from` sent it). */
  publish(topic: string, payload: Buffer, from?: DeviceSession): void {
    this.subscriptions.publish(topic, payload, from);
  }

  /** Closes the session of `clientId` here, if there is one (it logged in again elsewhere). */
  closeId(clientId: string): void {
    const s = this.byId.get(clientId);
    if (s !== undefined) this.close(s);
  }

  /** Closes the sessions `keep` says no; returns how many. */
  closeWhere(keep: (client: object) => boolean): number {
    let n = 0;
    for (const s of this.byId.values()) {
      if (keep(s)) continue;
      this.close(s);
      n++;
    }
    return n;
  }

  /** Closes every session; no new ones are expected (the listeners are closed). */
  stop(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
    this.mqtt5.stop();
    for (const s of this.open) {
      if (s.v5 !== null && s.state === CONNECTED) this.mqtt5.closeWith(s, ReasonCode.SERVER_SHUTTING_DOWN);
      this.close(s);
    }
  }

  private handOff(s: DeviceSession): false {
    const raw = s.raw!;
    s.raw = null;
    s.state = CLOSED;
    this.open.delete(s);
    const conn = s.conn;
    conn.off('data', s.onData);
    conn.off('close', s.onClose);
    conn.off('error', noop);
    conn.pause();
    conn.unshift(raw.length === 1 ? raw[0] : Buffer.concat(raw));
    this.hooks.handOff(conn);
    return false;
  }

  /**
   * Closes a session the broker ends for a reason worth counting (/metrics, rate-limited log); an MQTT 5 client is
   * told why in a DISCONNECT first.
   */
  refuse(s: DeviceSession, reason: ConnectionRefusal, err?: MalformedPacket): false {
    if (s.state === CLOSED) return this.close(s);
    this.hooks.onConnectionRefused?.(reason);
    if (s.v5 !== null && s.state === CONNECTED && reason !== 'slow_reader') {
      this.mqtt5.closeWith(s, err?.reasonCode ?? DISCONNECT_CODES[reason], err?.message);
      this.retire(s);
      return false; // the socket ends once DISCONNECT is written; the sweep ends one left half open
    }
    return this.close(s);
  }

  private close(s: DeviceSession): false {
    s.state = CLOSED;
    s.conn.destroy();
    return false;
  }

  /**
   * Closes connections silent past 1.5 × their keep-alive [MQTT-3.1.2-24] (up to one sweep late: the clock is the
   * sweep's), and those not logged in within the connect timeout of opening (a CONNECT sent a byte at a time, a login
   * that never finishes, a refused device that keeps its socket open).
   */
  private sweep(): void {
    const now = (this.clock = Date.now());
    this.mqtt5.sweep(now);
    const openedBy = now - this.cfg.connectTimeoutMs;
    for (const s of this.open) {
      if (s.state === CONNECTED) {
        if (s.held)
          s.lastSeen = now; // its PINGREQs wait in the paused socket
        else if (s.keepalive > 0 && now - s.lastSeen > s.keepalive * 1500 + SWEEP_MS)
          this.refuse(s, 'keepalive_timeout');
      } else if (s.lastSeen < openedBy) {
        if (s.state === CLOSED)
          s.conn.destroy(); // refused or ended, its socket left half open
        else this.refuse(s, 'connect_timeout');
      }
    }
  }
}

function noop(): void {}
