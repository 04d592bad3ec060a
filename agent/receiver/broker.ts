import { Aedes, type AuthenticateError, type Client, type PublishPacket } from 'aedes';
import { sparseEmitter } from './sparse-emitter.js';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Logger } from 'pino';
import type { InboundMessage } from '../pipeline/ingest.js';
import type { Done } from '../buffer/batcher.js';

/** What the embedded broker needs from device security (agent/receiver/auth.ts implements it). */
export interface BrokerAuth {
  authenticate(client: Client, username: string | undefined, password: Buffer | undefined, done: (err: AuthenticateError | null, ok: boolean | null) => void): void;
  authorizeSubscribe(client: Client, sub: { topic: string; qos: number }, done: (err: Error | null, sub?: { topic: string; qos: number } | null) => void): void;
  /** True when this client may publish to `topic` (its own telemetry/events topics). */
  mayPublish(client: Client, topic: string): boolean;
}

export interface EmbeddedBrokerConfig {
  host: string;
  /** MQTT over TCP; 0 = off. */
  tcpPort: number;
  tls: { port: number; cert: string; key: string; ca: string; requireClientCert: boolean };
  /** MQTT over WebSocket (path /, subprotocol mqtt); 0 = off. */
  wsPort: number;
}

export interface BrokerHooks {
  onRefused?(reason: 'acl_publish', clientId: string, topic: string): void;
  onClientCount?(n: number): void;
}

/**
 * The embedded MQTT broker (aedes, MQTT 3.1.1) on TCP, TLS and WebSocket listeners.
 *
 * Durable before ack: aedes writes PUBACK as soon as `authorizePublish` calls back, so the message is decoded and
 * handed to the pipeline inside that hook, and the hook calls back only when the pipeline says the batch is on disk.
 * QoS 2 keeps its protocol flow (PUBREC after the commit, aedes drops a retransmitted duplicate), which gives it the
 * same durability as QoS 1.
 */
export class EmbeddedBroker {
  private aedes: Aedes | null = null;
  private servers: (NetServer | HttpServer)[] = [];
  private wss: WebSocketServer | null = null;
  readonly ports: { tcp?: number; tls?: number; ws?: number } = {};

  constructor(
    private readonly cfg: EmbeddedBrokerConfig,
    private readonly auth: BrokerAuth,
    private readonly sink: (msg: InboundMessage, done: Done) => void,
    private readonly log: Logger,
    private readonly hooks: BrokerHooks = {},
  ) {}

  async start(): Promise<void> {
    const aedes = await Aedes.createBroker({
      authenticate: (client, username, password, done) => this.auth.authenticate(client, username, password as Buffer | undefined, done),
      authorizeSubscribe: (client, sub, done) => this.auth.authorizeSubscribe(client, sub, done as never),
      authorizePublish: (client, packet, done) => this.authorizePublish(client, packet, done),
      // Devices publish telemetry, they do not take part in each other's streams: nothing to deliver onward but the
      // agent's own error reports.
      mq: sparseEmitter(),
      drainTimeout: 30_000,
      heartbeatInterval: 3_600_000,
    });
    this.aedes = aedes;
    const count = () => this.hooks.onClientCount?.(aedes.connectedClients);
    aedes.on('clientReady', count);
    aedes.on('clientDisconnect', count);
    aedes.on('clientError', (client, err) => this.log.debug({ client: client?.id, err: err.message }, 'client error'));
    aedes.on('connectionError', (client, err) => this.log.debug({ client: client?.id, err: err.message }, 'connection error'));

    const { host } = this.cfg;
    if (this.cfg.tcpPort > 0) this.ports.tcp = await this.listen(createNetServer(aedes.handle), this.cfg.tcpPort, host);
    const t = this.cfg.tls;
    if (t.port > 0) {
      const server = createTlsServer({
        cert: readFileSync(t.cert),
        key: readFileSync(t.key),
        ...(t.ca ? { ca: readFileSync(t.ca), requestCert: true } : {}),
        rejectUnauthorized: t.requireClientCert,
      }, aedes.handle as (socket: TLSSocket) => void);
      this.ports.tls = await this.listen(server, t.port, host);
    }
    if (this.cfg.wsPort > 0) {
      const http = createHttpServer((_req, res) => res.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSocket: connect with subprotocol mqtt\n'));
      this.wss = new WebSocketServer({ server: http, handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false) });
      this.wss.on('connection', (ws) => aedes.handle(createWebSocketStream(ws) as never));
      this.ports.ws = await this.listen(http, this.cfg.wsPort, host);
    }
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
    if (!this.auth.mayPublish(client, packet.topic)) {
      this.hooks.onRefused?.('acl_publish', client.id, packet.topic);
      return done(new Error(`client ${client.id} may not publish to ${packet.topic}`));
    }
    const contentType = (packet as { properties?: { contentType?: string } }).properties?.contentType;
    this.sink({ topic: packet.topic, payload: packet.payload as Buffer, qos: packet.qos, contentType }, (err) => done(err ?? null));
  }

  /** Publishes one message from the agent itself (QoS 0, not retained): rejection reports on errors topics. */
  publish(topic: string, payload: string | Buffer): void {
    this.aedes?.publish({ cmd: 'publish', topic, payload: typeof payload === 'string' ? Buffer.from(payload) : payload, qos: 0, retain: false, dup: false }, () => undefined);
  }

  /** Stops accepting connections (listeners close); connected devices stay until close(). */
  stopAccepting(): void {
    for (const s of this.servers) s.close();
  }

  async close(): Promise<void> {
    this.stopAccepting();
    this.wss?.close();
    const aedes = this.aedes;
    this.aedes = null;
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
    for (const s of this.servers) (s as NetServer & { closeAllConnections?: () => void }).closeAllConnections?.();
    this.servers = [];
  }
}
