import type { Socket } from 'node:net';
import { ackPacket, FrameSplitter, type WillMessage } from '../../protocol/mqtt/frames.js';

/** Bytes a device may leave unread in its socket's write queue (acks, error reports) before it is disconnected. */
const MAX_UNREAD_BYTES = 1024 * 1024;

export const AWAITING_CONNECT = 0;
export const AUTHENTICATING = 1;
export const CONNECTED = 2;
export const CLOSED = 3;

/** An acknowledgement waiting for its message to be settled, kept in arrival order [MQTT-4.6.0-2]. */
export interface PendingAck {
  packet: Buffer;
  settled: boolean;
}

/** What an MQTT 5 connection adds to its session (mqtt5.ts); 3.1.1 sessions carry none of it. */
export class Session5 {
  /** Inbound topic aliases of this connection [MQTT-3.3.2.3.4]. */
  aliases: Map<number, string> | null = null;
  /** QoS 1 and 2 publishes received and not yet answered with PUBACK or PUBCOMP (the receive maximum's count). */
  inflight = 0;
  /** Filters subscribed with No Local: the device's own messages are not sent back through them. */
  noLocal: Set<string> | null = null;
  /** True once the client sent DISCONNECT without asking for its will. */
  willCleared = false;

  constructor(
    /** seconds the session outlives the connection, as granted (bounded by mqtt.broker.max_session_expiry) */
    public sessionExpiry: number,
    /** the client's Request Problem Information: reason strings may be sent */
    readonly problemInfo: boolean,
    /** the largest packet the client takes [MQTT-3.1.2-24] */
    readonly maxPacket: number,
    readonly will: WillMessage | null,
  ) {}
}

/** What a session calls back into (DeviceSessions). */
export interface SessionHost {
  readonly cfg: { maxPacketBytes: number };
  onData(s: DeviceSession, chunk: Buffer): void;
  onPacket(s: DeviceSession, first: number, body: Buffer): boolean;
  onClose(s: DeviceSession): void;
  cork(s: DeviceSession): void;
  refuse(s: DeviceSession, reason: 'slow_reader'): void;
}

/**
 * One device connection on the lean path (device-sessions.ts). It carries the `id` and `conn` that the authorizer
 * reads from an aedes client, so the same rules (SECURITY.md) decide both paths.
 */
export class DeviceSession {
  id = '';
  state = AWAITING_CONNECT;
  /** seconds; 0 = none */
  keepalive = 0;
  /** The sweep clock when the connection opened, then when the device last sent anything once connected. */
  lastSeen: number;
  readonly frames: FrameSplitter;
  /** Bytes received before CONNECT was read, kept to hand the connection to aedes unchanged. */
  raw: Buffer[] | null = [];
  /** Packets received while the login is checked. */
  early: [number, Buffer][] | null = null;
  /** Acks not yet written, oldest first. */
  acks: PendingAck[] | null = null;
  /** QoS 2 message ids stored and not yet released by PUBREL: a resent PUBLISH of one is not stored again. */
  qos2: Set<number> | null = null;
  /** Granted subscriptions: filter → its levels when it has a wildcard, else null. */
  subs: Map<string, string[] | null> | null = null;
  /** Chunks waiting for the next turn (TurnBudget). */
  deferred: Buffer[] | null = null;
  /** True while writes are gathered for one syscall at the end of this tick (DeviceSessions.cork). */
  corked = false;
  /** True while a message of this device waits for the memory limiter: its socket stays paused until then. */
  held = false;
  /** MQTT 5 state, or null on a 3.1.1 connection. */
  v5: Session5 | null = null;
  /** True once the session's end was handled (its subscriptions dropped, its state kept or its will sent). */
  retired = false;

  constructor(
    readonly conn: Socket,
    readonly host: SessionHost,
    now: number,
  ) {
    this.lastSeen = now;
    this.frames = new FrameSplitter(host.cfg.maxPacketBytes);
  }

  readonly onData = (chunk: Buffer): void => this.host.onData(this, chunk);
  readonly onPacket = (first: number, body: Buffer): boolean => this.host.onPacket(this, first, body);
  readonly onClose = (): void => this.host.onClose(this);

  pause(): void {
    this.conn.pause();
  }

  resume(): void {
    if (this.state !== CLOSED && !this.held) this.conn.resume();
  }

  write(packet: Buffer): void {
    if (this.state === CLOSED) return;
    if (!this.corked) this.host.cork(this);
    this.conn.write(packet);
    // A device that does not read its acks would make this queue grow without end.
    if (this.conn.writableLength > MAX_UNREAD_BYTES) this.host.refuse(this, 'slow_reader');
  }

  /** An ack (PUBACK, PUBREC) to write once its message is settled, after every ack before it. */
  pendingAck(type: number, id: number): PendingAck {
    const ack = { packet: ackPacket(type, id), settled: false };
    (this.acks ??= []).push(ack);
    return ack;
  }

  /** Marks `ack` settled (written as `packet` when given) and writes every settled ack at the head of the queue. */
  settle(ack: PendingAck, packet?: Buffer): void {
    ack.settled = true;
    if (packet !== undefined) ack.packet = packet;
    const q = this.acks!;
    let n = 0;
    while (n < q.length && q[n].settled) this.write(q[n++].packet);
    if (n === q.length) this.acks = null;
    else if (n > 0) q.splice(0, n);
  }
}
