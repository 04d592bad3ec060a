import mqtt, { type IClientOptions, type MqttClient, type Packet } from 'mqtt';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { InboundMessage, Settled } from './message.js';

export interface BrokerClientConfig {
  /** mqtt://, mqtts://, ws:// or wss:// URL of the broker to subscribe to. */
  url: string;
  username: string;
  password: string;
  /** Fixed client id, so the broker keeps the session (and unacknowledged messages) across restarts. */
  clientId: string;
  /** PEM CA bundle for TLS URLs; '' = system CAs. */
  ca: string;
  /** When set, subscriptions are `$share/<group>/<filter>`: several agents split one stream. */
  sharedGroup: string;
  /** 4 = MQTT 3.1.1, 5 = MQTT 5 (content-type honoured). */
  protocolVersion: 4 | 5;
  /** Topic filters, e.g. devices/+/telemetry and devices/+/events. */
  filters: string[];
}

/** MQTT 5 session expiry: keep the session a week after a disconnect, so an agent restart loses nothing. */
const SESSION_EXPIRY_S = 7 * 24 * 3600;

type SendPacket = (packet: Packet, cb?: (err?: Error) => void, ...rest: unknown[]) => void;

/**
 * Broker client mode: the agent subscribes to an existing broker (mosquitto, …) with a persistent session and QoS 1
 * subscriptions, and acknowledges each message to that broker only after its batch is committed. A message that was
 * not acknowledged when the agent died is redelivered by the broker.
 *
 * MQTT.js handles incoming packets one at a time and sends the PUBACK before it reads the next, so holding the ack
 * inside its callbacks would allow one message per disk commit (and its `customHandleAcks` hook exists for MQTT 5
 * only). Instead the PUBACK that MQTT.js sends right after its 'message' event is held back here until the message
 * is durable, while MQTT.js goes on reading: every message in flight joins the same group commit, and the acks leave
 * in arrival order, as [MQTT-4.6.0-2] requires. Held acks belong to one connection: after a reconnect they are
 * dropped, and the broker redelivers those messages. Subscriptions are QoS 1, so the broker downgrades QoS 2
 * publishes to QoS 1 for the agent (MQTT.js keeps QoS 2 state in memory, which a kill -9 would lose).
 */
export class BrokerClientReceiver {
  private client: MqttClient | null = null;
  private generation = 0;
  /** messageId → state of an ack waiting for its commit on the current connection. */
  private held = new Map<number, { durable: boolean; send: (() => void) | null }>();

  constructor(
    private readonly cfg: BrokerClientConfig,
    private readonly sink: (msg: InboundMessage, done: Settled) => void,
    private readonly log: Logger,
  ) {}

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** Starts connecting; returns at once (readiness follows `connected`). */
  start(): void {
    const c = this.cfg;
    const opts: IClientOptions = {
      clientId: c.clientId,
      clean: false,
      protocolVersion: c.protocolVersion,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      ...(c.username ? { username: c.username } : {}),
      ...(c.password ? { password: c.password } : {}),
      ...(c.ca ? { ca: readFileSync(c.ca) } : {}),
      ...(c.protocolVersion === 5 ? { properties: { sessionExpiryInterval: SESSION_EXPIRY_S } } : {}),
    };
    const client = mqtt.connect(c.url, opts);
    this.client = client;
    const send = (client as unknown as { _sendPacket: SendPacket })._sendPacket.bind(client);
    (client as unknown as { _sendPacket: SendPacket })._sendPacket = (packet, cb, ...rest) => {
      const cmd = packet.cmd;
      const id = (packet as { messageId?: number }).messageId;
      const entry = cmd === 'puback' && id !== undefined ? this.held.get(id) : undefined;
      if (entry === undefined || entry.durable) {
        if (entry) this.held.delete(id!);
        return send(packet, cb, ...rest);
      }
      // Not durable yet: let MQTT.js go on reading, send the ack when the commit lands.
      const generation = this.generation;
      entry.send = () => {
        if (generation === this.generation) send(packet, undefined, ...rest);
      };
      cb?.();
    };

    client.on('connect', (connack) => {
      this.log.info({ url: c.url, sessionPresent: connack.sessionPresent }, 'connected to broker');
      const filters = c.filters.map((f) => (c.sharedGroup ? `$share/${c.sharedGroup}/${f}` : f));
      // With a session present the broker still has the subscriptions; subscribing again is harmless and covers a
      // broker that lost them.
      client.subscribe(filters, { qos: 1 }, (err, granted) => {
        if (err) this.log.error({ err: err.message }, 'subscribe failed');
        else this.log.info({ granted: granted?.map((g) => `${g.topic}@${g.qos}`) }, 'subscribed');
      });
    });
    client.on('close', () => {
      this.generation++;
      this.held.clear();
    });
    client.on('error', (err) => this.log.warn({ err: err.message, url: c.url }, 'broker connection error'));
    // MQTT.js emits 'message' and then sends the PUBACK, synchronously: registering the message here is what lets
    // the _sendPacket wrapper above recognise and hold that PUBACK.
    client.on('message', (topic, payload, packet) => {
      if (packet.qos === 0) this.sink(message(topic, payload, 0, packet.properties), () => undefined);
      else this.onReliable(topic, payload, packet as { messageId: number; qos: 1 | 2; properties?: Props5 });
    });
  }

  private onReliable(
    topic: string,
    payload: Buffer,
    packet: { messageId: number; qos: 1 | 2; properties?: Props5 },
  ): void {
    const entry = { durable: false, send: null as (() => void) | null };
    this.held.set(packet.messageId, entry);
    const generation = this.generation;
    this.sink(message(topic, payload, packet.qos, packet.properties), (err) => {
      if (generation !== this.generation) return; // the connection that brought it is gone: it will be redelivered
      if (err) {
        // Not stored (disk full, …): never acknowledge. Drop the connection so the broker redelivers it later.
        this.held.delete(packet.messageId);
        this.log.error({ err: err.message, topic }, 'message not stored; reconnecting so the broker redelivers it');
        this.client?.stream.destroy();
        return;
      }
      entry.durable = true;
      if (entry.send) {
        this.held.delete(packet.messageId);
        entry.send();
      }
    });
  }

  publish(topic: string, payload: string | Buffer): void {
    if (this.client?.connected) this.client.publish(topic, payload, { qos: 0, retain: false });
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = null;
    if (client) await client.endAsync(false);
  }
}

/** The MQTT 5 properties of a delivered message that the pipeline reads, as MQTT.js gives them. */
interface Props5 {
  contentType?: string;
  userProperties?: Record<string, string | string[]>;
}

function message(topic: string, payload: Buffer, qos: 0 | 1 | 2, props: Props5 | undefined): InboundMessage {
  const msg: InboundMessage = { topic, payload, qos, contentType: props?.contentType };
  const user = props?.userProperties;
  if (user !== undefined)
    msg.userProperties = Object.entries(user).flatMap(([k, v]) =>
      (Array.isArray(v) ? v : [v]).map((x) => [k, String(x)] as [string, string]),
    );
  return msg;
}
