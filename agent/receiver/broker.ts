import type { Admission } from '../../runtime/processors/memory-limiter.js';
import type { Aedes, AuthenticateError, Client, PublishPacket } from 'aedes';
import { DROPPED_TOPIC, sparseEmitter, type SparseEmitter } from './sparse-emitter.js';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { WebSocketServer } from 'ws';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { DeviceSessions } from './device-sessions.js';
import { limitPacketSize } from './aedes-packet-limit.js';
import { PublishRate } from './publish-rate.js';
import type { Logger } from 'pino';
import type { InboundMessage, Settled } from './message.js';

/** What the embedded broker needs from device security (agent/receiver/auth.ts implements it). */
export interface BrokerAuth {
  preConnect(client: Client, packet: { clientId?: unknown }, done: (err: Error | null, ok: boolean) => void): void;
  authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (err: AuthenticateError | null, ok: boolean | null) => void,
  ): void;
  authorizeSubscribe(
    client: Client,
    sub: { topic: string; qos: number },
    done: (err: Error | null, sub?: { topic: string; qos: number } | null) => void,
  ): void;
  /** True when this client may publish to `topic` (its own telemetry/events topics). */
  mayPublish(client: Client, topic: string): boolean;
  /** The device id a client authenticated as. */
  identityOf(client: object): string | undefined;
  /** False once the credentials behind a client's login were removed or replaced (after a reload). */
  stillValid(client: object): boolean;
}

export interface EmbeddedBrokerConfig {
  host: string;
  /** MQTT over TCP; 0 = off. */
  tcpPort: number;
  tls: { port: number; cert: string; key: string; ca: string; requireClientCert: boolean };
  /** MQTT over WebSocket (path /, subprotocol mqtt); 0 = off. */
  wsPort: number;
  /** Open connections across all listeners; more are closed at once. */
  maxConnections: number;
  /** ms a connection may take to send CONNECT. */
  connectTimeoutMs: number;
  /** The memory limiter, when configured: logins are refused and reads paused while it refuses. */
  admission?: Admission;
  /** Messages a second one connection may publish; 0 = no limit (the default). */
  maxPublishRate?: number;
  /** MQTT 5: QoS 1 and 2 publishes a client may have unanswered at once; default 100. */
  receiveMaximum?: number;
  /** MQTT 5: inbound topic aliases per connection; 0 = none; default 64. */
  topicAliasMaximum?: number;
  /** MQTT 5: seconds a session may outlive its connection at most; default 3600. */
  maxSessionExpiry?: number;
}

/**
 * Largest MQTT packet taken in: the 256 KiB payload limit plus room for a topic (up to 64 KiB) and properties.
 * The check runs on the fixed header's length field, so a packet that claims more is refused before its bytes are
 * buffered (a CONNECT claiming 200 MiB used to be read into memory before any login).
 */
export const MAX_PACKET_BYTES = 256 * 1024 + 68 * 1024;

export type ConnectionRefusal =
  | 'max_connections'
  | 'packet_too_large'
  /** a packet breaking MQTT (a lean session; aedes' own are logged at debug) */
  | 'protocol_error'
  | 'keepalive_timeout'
  /** no CONNECT, or no finished login, within mqtt.broker.connect_timeout */
  | 'connect_timeout'
  /** more than 1 MiB of acks left unread */
  | 'slow_reader'
  /** more than 1,000 packets sent while the login was checked */
  | 'early_packets'
  /** a login while the memory limiter refuses input (CONNACK 3, server unavailable) */
  | 'memory_limit';

export interface BrokerHooks {
  /** A publish acknowledged and dropped: the client may not publish to `topic` (already counted by the auth). */
  onPublishRefused?(deviceId: string | undefined, topic: string): void;
  /**
   * A publish refused over mqtt.broker.max_publish_rate; `first` for the first of a run of refusals (the device is
   * told once per run).
   */
  onQuotaExceeded?(deviceId: string | undefined, topic: string, first: boolean): void;
  /** A publish sent with the retain flag: its data is taken, the flag dropped (the agent keeps no retained store). */
  onRetainCleared?(clientId: string): void;
  onConnectionRefused?(reason: ConnectionRefusal): void;
  onClientCount?(n: number): void;
}

/**
 * The embedded MQTT broker on TCP, TLS and WebSocket listeners: MQTT 5 and 3.1.1 side by side. Connections start on
 * the lean device-session path (device-sessions.ts); 3.1.1 ones with a will or a persistent session go to aedes.
 *
 * Durable before ack: aedes writes PUBACK as soon as `authorizePublish` calls back, so the message is decoded and
 * handed to the pipeline inside that hook, and the hook calls back only when the pipeline says the batch is on disk.
 * QoS 2 keeps its protocol flow (PUBREC after the commit, aedes drops a retransmitted duplicate), which gives it the
 * same durability as QoS 1.
 */
export class EmbeddedBroker {
  private aedes: Aedes | null = null;
  private aedesLoading: Promise<Aedes> | null = null;
  private mq: SparseEmitter | null = null;
  private sessions: DeviceSessions | null = null;
  private count: () => void = () => undefined;
  private servers: (NetServer | HttpServer)[] = [];
  private wss: WebSocketServer | null = null;
  private connections = 0;
  private readonly rate: PublishRate;
  /** The HTTP request under each WebSocket connection, for aedes when one is handed to it. */
  private readonly upgrades = new WeakMap<Duplex, unknown>();
  readonly ports: { tcp?: number; tls?: number; ws?: number } = {};

  constructor(
    private readonly cfg: EmbeddedBrokerConfig,
    private readonly auth: BrokerAuth,
    private readonly sink: (msg: InboundMessage, done: Settled) => void,
    private readonly log: Logger,
    private readonly hooks: BrokerHooks = {},
  ) {
    this.rate = new PublishRate(cfg.maxPublishRate ?? 0);
  }

  async start(): Promise<void> {
    const count = () => this.hooks.onClientCount?.((this.aedes?.connectedClients ?? 0) + (this.sessions?.size ?? 0));
    const sessions = new DeviceSessions(
      {
        maxPacketBytes: MAX_PACKET_BYTES,
        connectTimeoutMs: this.cfg.connectTimeoutMs,
        admission: this.cfg.admission,
        rate: this.rate,
        receiveMaximum: this.cfg.receiveMaximum ?? 100,
        topicAliasMaximum: this.cfg.topicAliasMaximum ?? 64,
        maxSessionExpiry: this.cfg.maxSessionExpiry ?? 3600,
        maxStoredSessions: this.cfg.maxConnections,
      },
      this.auth,
      this.sink,
      {
        ...this.hooks,
        handOff: (conn) => {
          this.loadAedes().then(
            (aedes) => (conn.destroyed ? undefined : this.toAedes(aedes, conn, this.upgrades.get(conn))),
            (err: Error) => {
              this.log.error({ err: err.message }, 'aedes could not start: connection closed');
              conn.destroy();
            },
          );
        },
        takeOver: (clientId) => (this.aedes ? aedesClients(this.aedes)[clientId]?.close() : undefined),
        onSessionCount: count,
        relay: (topic, payload, qos, from) => {
          // What a device publishes reaches the broker's subscribers, as on the aedes path (a local consumer).
          sessions.publish(topic, payload, from);
          if (this.aedes !== null && this.mq?.canReach(topic))
            this.aedes.publish(
              { cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain: false, dup: false },
              () => undefined,
            );
        },
      },
    );
    this.sessions = sessions;
    this.count = count;

    const { host } = this.cfg;
    // Every connection starts on the lean device-session path, which hands to aedes (started on first need) what
    // it does not serve.
    const lean = (conn: Socket) => this.accept(conn, () => sessions.accept(conn));
    if (this.cfg.tcpPort > 0) this.ports.tcp = await this.listen(createNetServer(lean), this.cfg.tcpPort, host);
    const t = this.cfg.tls;
    if (t.port > 0) {
      const server = createTlsServer(
        {
          cert: readFileSync(t.cert),
          key: readFileSync(t.key),
          ...(t.ca ? { ca: readFileSync(t.ca), requestCert: true } : {}),
          rejectUnauthorized: t.requireClientCert,
        },
        lean as (socket: TLSSocket) => void,
      );
      this.ports.tls = await this.listen(server, t.port, host);
    }
    if (this.cfg.wsPort > 0) {
      const { WebSocketServer, createWebSocketStream } = await import('ws'); // loaded only when a listener needs it
      const http = createHttpServer((_req, res) =>
        res
          .writeHead(426, { 'content-type': 'text/plain' })
          .end('MQTT over WebSocket: connect with subprotocol mqtt\n'),
      );
      this.wss = new WebSocketServer({
        server: http,
        maxPayload: MAX_PACKET_BYTES,
        handleProtocols: (protocols) =>
          protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false,
      });
      this.wss.on('connection', (ws, req) => {
        const stream = createWebSocketStream(ws);
        // The address the authorizer throttles failed logins by, as a socket would carry it.
        Object.defineProperty(stream, 'remoteAddress', { value: req.socket.remoteAddress });
        this.upgrades.set(stream, req);
        lean(stream as unknown as Socket);
      });
      this.ports.ws = await this.listen(http, this.cfg.wsPort, host);
    }
  }

  /**
   * aedes, started on first need: an MQTT 3.1.1 device with a will or a persistent session. Devices on the lean path
   * never load it (about 5 MB of resident memory).
   */
  private loadAedes(): Promise<Aedes> {
    this.aedesLoading ??= this.createAedes();
    return this.aedesLoading;
  }

  private async createAedes(): Promise<Aedes> {
    const [{ Aedes }, mqttPacket] = await Promise.all([import('aedes'), import('mqtt-packet')]);
    // aedes writes through mqtt-packet, which by default builds a 65,536-buffer cache of message ids (6 MB of heap,
    // seen in a heap snapshot) on its first write; writing the two bytes as needed costs nothing measurable.
    const packets = ((mqttPacket as { default?: unknown }).default ?? mqttPacket) as {
      writeToStream: { cacheNumbers: boolean };
    };
    packets.writeToStream.cacheNumbers = false;
    const mq = sparseEmitter();
    const aedes = await Aedes.createBroker({
      preConnect: (client, packet, done) => this.auth.preConnect(client, packet as { clientId?: unknown }, done),
      authenticate: (client, username, password, done) => {
        if (this.cfg.admission?.refusing) {
          // WebSocket logins reach aedes directly; aedes answers returnCode 3 "server unavailable" and closes.
          this.hooks.onConnectionRefused?.('memory_limit');
          return done(Object.assign(new Error('server unavailable: memory limit'), { returnCode: 3 }) as never, false);
        }
        this.auth.authenticate(client, username, password as Buffer | undefined, done);
      },
      authorizeSubscribe: (client, sub, done) => this.auth.authorizeSubscribe(client, sub, done as never),
      authorizePublish: (client, packet, done) => this.authorizePublish(client, packet, done),
      // Devices publish telemetry, they do not take part in each other's streams: nothing to deliver onward but the
      // agent's own error reports.
      mq,
      drainTimeout: 30_000,
      heartbeatInterval: 3_600_000,
      connectTimeout: this.cfg.connectTimeoutMs,
    });
    aedes.on('clientReady', (client) => {
      this.sessions?.closeId(client.id); // [MQTT-3.1.4-2], across the two paths
      this.count();
    });
    aedes.on('clientDisconnect', () => this.count());
    aedes.on('clientError', (client, err) => this.log.debug({ client: client?.id, err: err.message }, 'client error'));
    aedes.on('connectionError', (client, err) =>
      this.log.debug({ client: client?.id, err: err.message }, 'connection error'),
    );
    this.mq = mq;
    this.aedes = aedes;
    return aedes;
  }

  /** A new connection on any listener: counted against max_connections, then served. */
  private accept(conn: Duplex, serve: () => void): void {
    if (this.connections >= this.cfg.maxConnections) {
      this.hooks.onConnectionRefused?.('max_connections');
      conn.destroy();
      return;
    }
    this.connections++;
    let counted = true;
    const release = () => {
      if (counted) this.connections--;
      counted = false;
    };
    conn.once('close', release);
    conn.once('error', release);
    serve();
  }

  /** Serves a connection with aedes, its packets bounded. */
  private toAedes(aedes: Aedes, conn: Duplex, req: unknown): void {
    const client = (aedes.handle as (c: Duplex, r?: unknown) => unknown)(conn, req);
    limitPacketSize(client, MAX_PACKET_BYTES, () => this.hooks.onConnectionRefused?.('packet_too_large'));
  }

  /** Closes the connections of devices whose credentials were removed or replaced (after a reload). */
  disconnectRevoked(): number {
    let n = this.sessions?.closeWhere((c) => this.auth.stillValid(c)) ?? 0;
    for (const client of Object.values(this.aedes ? aedesClients(this.aedes) : {})) {
      if (!this.auth.stillValid(client)) {
        n++;
        client.close();
      }
    }
    return n;
  }

  private listen(server: NetServer | HttpServer, port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        this.servers.push(server);
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  private authorizePublish(client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void {
    if (client === null) return done(null); // the broker's own publishes (error reports)
    if (packet.retain) {
      // Nothing is retained here: a retained publish would be stored by aedes and replayed to later subscribers.
      packet.retain = false;
      this.hooks.onRetainCleared?.(client.id);
    }
    if (!this.auth.mayPublish(client, packet.topic)) {
      // Acknowledged and dropped, as mosquitto does in MQTT 3.1.1: closing the connection made the client resend the
      // same message on every reconnect, and none of its later readings ever arrived. The device learns why on its
      // errors topic (onPublishRefused).
      const topic = packet.topic;
      packet.topic = DROPPED_TOPIC;
      this.hooks.onPublishRefused?.(this.auth.identityOf(client), topic);
      return done(null);
    }
    const rate = this.rate.take(client);
    if (rate !== 'ok') {
      // Over mqtt.broker.max_publish_rate: acknowledged and dropped as above (MQTT 3.1.1 has no reason codes).
      const topic = packet.topic;
      packet.topic = DROPPED_TOPIC;
      this.hooks.onQuotaExceeded?.(this.auth.identityOf(client), topic, rate === 'first_over');
      return done(null);
    }
    const contentType = (packet as { properties?: { contentType?: string } }).properties?.contentType;
    this.sink({ topic: packet.topic, payload: packet.payload as Buffer, qos: packet.qos, contentType }, (err) =>
      done(err ?? null),
    );
    const admission = this.cfg.admission;
    if (packet.qos > 0 && admission?.refusing) {
      // Held by the sink until memory is back under the limit: stop reading this client meanwhile, as the lean path.
      // aedes reads in paused mode (conn.read() on 'readable'), so its own pause is the one that stops the parser.
      const c = client as unknown as { pause(): void; resume(): void; closed: boolean };
      c.pause();
      admission.whenAccepting(() => (c.closed ? undefined : c.resume()));
    }
  }

  /** Publishes one message from the agent itself (QoS 0, not retained): rejection reports on errors topics. */
  publish(topic: string, payload: string | Buffer): void {
    const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
    this.sessions?.publish(topic, bytes);
    this.aedes?.publish(
      {
        cmd: 'publish',
        topic,
        payload: bytes,
        qos: 0,
        retain: false,
        dup: false,
      },
      () => undefined,
    );
  }

  /** Stops accepting connections (listeners close); connected devices stay until stop(). */
  stopAccepting(): void {
    for (const s of this.servers) s.close();
  }

  async stop(): Promise<void> {
    this.stopAccepting();
    this.wss?.close();
    this.sessions?.stop();
    const aedes = this.aedesLoading ? await this.aedesLoading.catch(() => null) : null;
    this.aedes = null;
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
    for (const s of this.servers) (s as NetServer & { closeAllConnections?: () => void }).closeAllConnections?.();
    this.servers = [];
  }
}

function aedesClients(aedes: Aedes): Record<string, Client> {
  return (aedes as unknown as { clients: Record<string, Client> }).clients;
}
