import type { Admission } from '../../runtime/processors/memory-limiter.js';
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Client } from 'aedes';
import {
  ackPacket,
  connackPacket,
  MalformedPacket,
  PacketType,
  PINGRESP,
  readConnect,
  readPublish,
  readSubscribe,
  subackPacket,
  type ConnectPacket,
} from '../../protocol/mqtt/frames.js';
import { SessionSubscriptions } from './session-subscriptions.js';
import {
  AUTHENTICATING,
  AWAITING_CONNECT,
  CLOSED,
  CONNECTED,
  DeviceSession,
  type SessionHost,
} from './device-session.js';
import { TurnBudget } from './turn-budget.js';
import type { BrokerAuth, BrokerHooks, ConnectionRefusal } from './broker.js';
import type { InboundMessage, Settled } from './message.js';

export interface DeviceSessionsConfig {
  /** Largest packet taken in, checked on the fixed header before the body is buffered. */
  maxPacketBytes: number;
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
 * The lean device-session path of the embedded broker: MQTT 3.1.1 and 3.1 connections over TCP and TLS with a clean
 * session and no will — what a telemetry device opens — are served here with a socket, a frame splitter and a dozen
 * fields each, instead of aedes' per-client streams, parser, timers and closures (measured: aedes alone holds about
 * 3 × a bare Node socket server's memory at 10,000 devices). Everything else — a will, a persistent session,
 * MQTT 5, WebSocket — is handed to aedes with its CONNECT unread, so aedes serves it exactly as before.
 *
 * Devices on this path may subscribe (the authorizer lets a device subscribe to its errors topic): the agent's own
 * reports reach them at QoS 0 through `publish`, which is all the agent ever publishes. Durable before ack holds as
 * on the aedes path: PUBACK (QoS 1) and PUBREC (QoS 2) are written only once the sink says the message is stored,
 * and in the order the messages came.
 */
export class DeviceSessions implements SessionHost {
  private readonly byId = new Map<string, DeviceSession>();
  private readonly open = new Set<DeviceSession>();
  private readonly subscriptions = new SessionSubscriptions();
  private clock = Date.now();
  /** Sessions written to in this tick: a group commit settles thousands of messages at once, and each session's
   *  acks leave in one write instead of one syscall per ack. */
  private corked: DeviceSession[] = [];
  private readonly turns = new TurnBudget<DeviceSession>(TURN_BUDGET_MS, (s, chunk) => this.take(s, chunk));
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    readonly cfg: DeviceSessionsConfig,
    private readonly auth: BrokerAuth,
    private readonly sink: (msg: InboundMessage, done: Settled) => void,
    private readonly hooks: BrokerHooks & {
      /** A connection this path does not serve, its bytes put back unread. */
      handOff(conn: Socket): void;
      /** A device logged in here: a session of the same client id elsewhere must close [MQTT-3.1.4-2]. */
      takeOver(clientId: string): void;
      onSessionCount(n: number): void;
      /** A device's message, stored: to whoever subscribed to its topic. */
      relay(topic: string, payload: Buffer, qos: 0 | 1 | 2): void;
    },
  ) {}

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
    conn.setNoDelay(true);
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
          return this.packet(s, first, body);
        default:
          return false;
      }
    } catch (err) {
      if (err instanceof MalformedPacket) return this.refuse(s, 'protocol_error'); // [MQTT-4.8.0-1]
      throw err;
    }
  }

  onClose(s: DeviceSession): void {
    s.state = CLOSED;
    this.open.delete(s);
    if (s.subs !== null) this.subscriptions.remove(s, s.subs.keys());
    if (this.byId.get(s.id) === s) {
      this.byId.delete(s.id);
      this.hooks.onSessionCount(this.byId.size);
    }
  }

  private connect(s: DeviceSession, first: number, body: Buffer): boolean {
    if (first >> 4 !== PacketType.CONNECT) return this.refuse(s, 'protocol_error'); // [MQTT-3.1.0-1]
    if (this.cfg.admission?.refusing) {
      // Over the memory limit: "server unavailable" [MQTT-3.2.2.3], for every login (those aedes would serve too).
      this.hooks.onConnectionRefused?.('memory_limit');
      s.conn.end(connackPacket(3));
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
    const lean =
      (c.protocolLevel === 4 && c.protocolName === 'MQTT') || (c.protocolLevel === 3 && c.protocolName === 'MQIsdp');
    if (!lean || !c.clean || c.will) return this.handOff(s);
    s.raw = null;
    s.state = AUTHENTICATING;
    s.keepalive = c.keepalive;
    const client = s as unknown as Client; // has the `id` and `conn` the authorizer reads
    if (c.clientId === '') {
      // As aedes does, and the authorizer knows an id of this form is generated, not chosen [MQTT-3.1.3-6].
      this.auth.preConnect(client, { clientId: '' }, noop);
      s.id = `aedes_${randomUUID()}`;
    } else s.id = c.clientId;
    this.auth.authenticate(client, c.username, c.password, (err, ok) => this.authenticated(s, err, ok));
    return true;
  }

  private authenticated(s: DeviceSession, err: { returnCode?: number } | null, ok: boolean | null): void {
    if (s.state === CLOSED) return;
    if (err !== null || ok !== true) {
      // [MQTT-3.2.2-5]: a refusal is answered, then the connection closes (the sweep ends one left half open).
      s.conn.end(connackPacket(err?.returnCode ?? 5));
      s.state = CLOSED;
      return;
    }
    const older = this.byId.get(s.id);
    if (older !== undefined) this.close(older);
    this.hooks.takeOver(s.id);
    this.byId.set(s.id, s);
    s.state = CONNECTED;
    s.lastSeen = this.clock;
    s.write(connackPacket(0));
    this.hooks.onSessionCount(this.byId.size);
    const early = s.early;
    s.early = null;
    if (early !== null) for (const [first, body] of early) if (!s.onPacket(first, body)) return;
  }

  private packet(s: DeviceSession, first: number, body: Buffer): boolean {
    switch (first >> 4) {
      case PacketType.PUBLISH:
        this.received(s, first, body);
        return true;
      case PacketType.PUBREL: {
        if ((first & 0x0f) !== 0x02 || body.length < 2) return this.refuse(s, 'protocol_error'); // [MQTT-3.6.1-1]
        const id = body.readUInt16BE(0);
        s.qos2?.delete(id);
        s.write(ackPacket(PacketType.PUBCOMP, id));
        return true;
      }
      case PacketType.SUBSCRIBE:
        if ((first & 0x0f) !== 0x02) return this.refuse(s, 'protocol_error'); // [MQTT-3.8.1-1]
        this.subscribe(s, body);
        return true;
      case PacketType.UNSUBSCRIBE: {
        if ((first & 0x0f) !== 0x02) return this.refuse(s, 'protocol_error'); // [MQTT-3.10.1-1]
        const { messageId, filters } = readSubscribe(body, false);
        this.subscriptions.remove(
          s,
          filters.map((f) => f.topic),
        );
        s.write(ackPacket(PacketType.UNSUBACK, messageId));
        return true;
      }
      case PacketType.PINGREQ:
        s.write(PINGRESP);
        return true;
      case PacketType.DISCONNECT:
        s.conn.end();
        s.state = CLOSED;
        return false;
      case PacketType.PUBACK:
      case PacketType.PUBREC:
      case PacketType.PUBCOMP:
        return true; // nothing is sent to devices above QoS 0: a stray ack changes nothing
      default:
        return this.refuse(s, 'protocol_error'); // a second CONNECT [MQTT-3.1.0-2], or a packet only a server sends
    }
  }

  private received(s: DeviceSession, first: number, body: Buffer): void {
    const p = readPublish(first, body);
    const client = s as unknown as Client;
    if (p.retain) this.hooks.onRetainCleared?.(s.id); // nothing is retained here: its data is taken, the flag dropped
    const ack = p.qos === 0 ? null : s.pendingAck(p.qos === 1 ? PacketType.PUBACK : PacketType.PUBREC, p.messageId);
    if (p.qos === 2) {
      if (s.qos2?.has(p.messageId)) return s.settle(ack!); // stored already; PUBREC again [MQTT-4.3.3-2]
      (s.qos2 ??= new Set()).add(p.messageId);
    }
    if (!this.auth.mayPublish(client, p.topic)) {
      // Acknowledged and dropped, as on the aedes path (broker.ts says why); the device hears why on its errors topic.
      this.hooks.onPublishRefused?.(this.auth.identityOf(s), p.topic);
      if (ack !== null) s.settle(ack);
      return;
    }
    this.sink({ topic: p.topic, payload: p.payload, qos: p.qos }, (err) => {
      if (err) {
        // Not stored: no ack, and the connection closes so the device sends it again.
        s.qos2?.delete(p.messageId);
        this.close(s);
        return;
      }
      if (ack !== null) s.settle(ack);
      this.hooks.relay(p.topic, p.payload, p.qos);
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

  private subscribe(s: DeviceSession, body: Buffer): void {
    const { messageId, filters } = readSubscribe(body, true);
    const granted: number[] = new Array<number>(filters.length);
    let left = filters.length;
    filters.forEach((f, i) => {
      this.auth.authorizeSubscribe(s as unknown as Client, f, (err, sub) => {
        if (s.state === CLOSED) return;
        if (err || !sub) granted[i] = 0x80;
        else {
          // Granted at QoS 0 [MQTT-3.9.3-1 allows less than asked]: this path delivers at QoS 0 only; a device
          // that needs QoS 1 deliveries connects with a persistent session, which aedes serves.
          granted[i] = 0;
          this.subscriptions.add(s, sub.topic);
        }
        if (--left === 0) s.write(subackPacket(messageId, granted));
      });
    });
  }

  /** Delivers one message (QoS 0) to every session on this path subscribed to `topic`. */
  publish(topic: string, payload: Buffer): void {
    this.subscriptions.publish(topic, payload);
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
    for (const s of this.open) this.close(s);
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

  /** Closes a session the broker ends for a reason worth counting (/metrics, rate-limited log). */
  refuse(s: DeviceSession, reason: ConnectionRefusal): false {
    if (s.state !== CLOSED) this.hooks.onConnectionRefused?.(reason);
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
