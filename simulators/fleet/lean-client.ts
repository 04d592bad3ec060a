import { EventEmitter } from 'node:events';
import { connect as tcpConnect, type Socket } from 'node:net';
import { generate } from 'mqtt-packet';
import { FrameSplitter, varintLength, writeVarint } from '../../protocol/mqtt/frames.js';

/**
 * A lean MQTT 3.1.1 device connection over plain TCP, for fleets of 10,000 devices in one process: it publishes at
 * QoS 0 or 1 (PUBACK), subscribes, keeps the session alive and reconnects — and nothing else, in a few hundred
 * bytes per connection where an MQTT.js client costs tens of KB (its stores, streams and timers). It offers the part
 * of MQTT.js's client API a simulated device uses (`connected`, `stream`, `publish`, `subscribe`, `end`, and the
 * `connect`/`close`/`error`/`message` events), so a device runs on either.
 *
 * QoS 1 is at least once as with MQTT.js: a message not acknowledged when the connection drops is sent again, with
 * DUP, after the next CONNACK. Keep-alive and CONNACK timeouts run on one timer for all connections.
 */

export interface LeanClientOptions {
  clientId: string;
  username?: string;
  password?: string;
  /** Seconds; a PINGREQ goes out when nothing was sent for this long; 0 = none. */
  keepalive: number;
  /** ms to wait for a CONNACK before the attempt counts as failed. */
  connectTimeout: number;
  /** ms between a lost connection and the next attempt; 0 = do not reconnect. */
  reconnectPeriod: number;
}

type Done = (err?: Error) => void;
interface Outgoing {
  packet: Buffer;
  done?: Done;
  /** Written on some connection: sent again with DUP. */
  sent: boolean;
}

/** Socket errors that only mean "no connection now": the client reconnects, as MQTT.js does, without an 'error'. */
const TRANSIENT = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EADDRNOTAVAIL', 'EHOSTUNREACH']);
const CONNACK = 2;
const PUBLISH = 3;
const PUBACK = 4;
const SUBACK = 9;
const PINGRESP = 13;
const PINGREQ = Buffer.from([0xc0, 0x00]);
const DISCONNECT = Buffer.from([0xe0, 0x00]);

export class LeanMqttClient extends EventEmitter {
  connected = false;
  /** The current socket (a new one per connection), for backpressure: `writableNeedDrain` and 'drain'. */
  stream: Socket;
  private readonly host: string;
  private readonly port: number;
  private readonly connectPacket: Buffer;
  /** Unacknowledged QoS 1 publishes and subscribes by packet id; sent again after a reconnect. */
  private readonly outgoing = new Map<number, Outgoing>();
  /** Subscriptions granted on an earlier connection: made again after each reconnection (clean sessions). */
  private readonly granted: { topic: string; qos: 0 | 1 }[] = [];
  private nextId = 1;
  private frames = new FrameSplitter();
  private ended = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  /** Date.now() of the last packet written (keep-alive) and of the connection attempt (CONNACK timeout). */
  private lastWrite = 0;
  private attemptAt = 0;
  private topicCache = { topic: '', bytes: Buffer.alloc(0) };

  constructor(
    url: URL,
    private readonly options: LeanClientOptions,
  ) {
    super();
    this.host = url.hostname.replace(/^\[|\]$/g, '');
    this.port = Number(url.port || 1883);
    this.connectPacket = generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId: options.clientId,
      keepalive: options.keepalive,
      ...(options.username !== undefined ? { username: options.username } : {}),
      ...(options.password !== undefined ? { password: Buffer.from(options.password) } : {}),
    });
    this.stream = this.open();
  }

  /** Publishes; `done` runs on PUBACK at QoS 1, once written at QoS 0. Not connected: QoS 1 waits, QoS 0 is lost. */
  publish(topic: string, payload: string | Buffer, opts: { qos: 0 | 1 | 2 }, done?: Done): void {
    if (opts.qos === 2) throw new Error('the lean MQTT client publishes at QoS 0 or 1');
    if (this.topicCache.topic !== topic) this.topicCache = { topic, bytes: Buffer.from(topic) };
    const t = this.topicCache.bytes;
    const body = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    const remaining = 2 + t.length + (opts.qos ? 2 : 0) + body;
    const head = 1 + varintLength(remaining);
    const p = Buffer.allocUnsafe(head + remaining);
    p[0] = 0x30 | (opts.qos << 1);
    let pos = writeVarint(p, 1, remaining);
    pos = p.writeUInt16BE(t.length, pos);
    pos += t.copy(p, pos);
    if (opts.qos === 1) {
      const id = this.allocateId();
      pos = p.writeUInt16BE(id, pos);
      this.outgoing.set(id, { packet: p, done, sent: this.connected });
    }
    if (typeof payload === 'string') p.write(payload, pos);
    else payload.copy(p, pos);
    if (opts.qos === 0) {
      if (this.connected) this.write(p);
      done?.();
    } else if (this.connected) this.write(p);
  }

  subscribe(topic: string, opts: { qos: 0 | 1 }, done?: Done): void {
    const id = this.allocateId();
    const packet = generate({ cmd: 'subscribe', messageId: id, subscriptions: [{ topic, qos: opts.qos }] });
    const granted = (err?: Error) => {
      if (!this.granted.some((g) => g.topic === topic)) this.granted.push({ topic, qos: opts.qos });
      done?.(err);
    };
    this.outgoing.set(id, { packet, done: granted, sent: this.connected });
    if (this.connected) this.write(packet);
  }

  /** Closes for good: with DISCONNECT unless `force`; `done` once the socket is closed. */
  end(force: boolean, done?: () => void): void {
    this.ended = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    LIVE.delete(this);
    const s = this.stream;
    if (s.destroyed || s.closed) {
      done?.();
      return;
    }
    if (done) s.once('close', () => done());
    if (!force && this.connected) s.end(DISCONNECT);
    else s.destroy();
  }

  private open(): Socket {
    this.attemptAt = Date.now();
    this.frames = new FrameSplitter();
    const s = tcpConnect({ host: this.host, port: this.port, noDelay: true });
    s.on('connect', () => this.write(this.connectPacket));
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (!TRANSIENT.has(err.code ?? '') && !this.ended) this.emit('error', err);
    });
    s.on('close', () => this.onClose(s));
    LIVE.add(this);
    ensureTicker();
    return s;
  }

  private write(p: Buffer): void {
    this.lastWrite = Date.now();
    this.stream.write(p);
  }

  private allocateId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = id === 0xffff ? 1 : id + 1;
      if (!this.outgoing.has(id)) return id;
    }
  }

  private onData(chunk: Buffer): void {
    // Not MQTT: drop the connection rather than buffer a stream that never frames.
    if (this.frames.push(chunk, this.onPacket) !== 'ok') this.stream.destroy();
  }

  private readonly onPacket = (first: number, body: Buffer): void => {
    switch (first >> 4) {
      case CONNACK:
        if (body[1] !== 0) {
          this.emit('error', new Error(`connection refused: CONNACK return code ${body[1]}`));
          this.stream.destroy();
          return;
        }
        this.connected = true;
        // What was unacknowledged on the lost connection goes out again (as a duplicate), before anything new.
        for (const o of this.outgoing.values()) {
          if (o.sent && o.packet[0] >> 4 === PUBLISH) o.packet[0] |= 0x08;
          o.sent = true;
          this.write(o.packet);
        }
        for (const g of this.granted) this.subscribe(g.topic, { qos: g.qos });
        this.emit('connect');
        return;
      case PUBACK:
      case SUBACK: {
        const id = body.readUInt16BE(0);
        const o = this.outgoing.get(id);
        if (o === undefined) return;
        this.outgoing.delete(id);
        o.done?.();
        return;
      }
      case PUBLISH: {
        const qos = (first >> 1) & 3;
        const topicLength = body.readUInt16BE(0);
        const topic = body.toString('utf8', 2, 2 + topicLength);
        let pos = 2 + topicLength;
        if (qos > 0) {
          const id = body.readUInt16BE(pos);
          pos += 2;
          this.write(Buffer.from([0x40, 0x02, id >> 8, id & 0xff]));
        }
        this.emit('message', topic, Buffer.from(body.subarray(pos)));
        return;
      }
      case PINGRESP:
        return;
    }
  };

  private onClose(s: Socket): void {
    if (s !== this.stream) return;
    const was = this.connected;
    this.connected = false;
    if (was || !this.ended) this.emit('close');
    if (this.ended || this.options.reconnectPeriod === 0) {
      LIVE.delete(this);
      return;
    }
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.ended) this.stream = this.open();
    }, this.options.reconnectPeriod);
  }

  /** The shared ticker's visit: a PINGREQ when idle for the keep-alive, a stuck CONNECT given up. */
  tick(now: number): void {
    const s = this.stream;
    if (this.connected) {
      if (this.options.keepalive > 0 && now - this.lastWrite >= this.options.keepalive * 1000) this.write(PINGREQ);
    } else if (!s.destroyed && now - this.attemptAt > this.options.connectTimeout) s.destroy();
  }
}

// ---- one timer for every connection's keep-alive and CONNACK timeout ----

const LIVE = new Set<LeanMqttClient>();
let ticker: NodeJS.Timeout | null = null;

function ensureTicker(): void {
  if (ticker !== null) return;
  ticker = setInterval(() => {
    if (LIVE.size === 0) {
      clearInterval(ticker!);
      ticker = null;
      return;
    }
    const now = Date.now();
    for (const c of LIVE) c.tick(now);
  }, 500);
  ticker.unref();
}
