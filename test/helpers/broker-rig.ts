import { connect as tcpConnect } from 'node:net';
import { connectAsync, type MqttClient } from 'mqtt';
import { generate } from 'mqtt-packet';
import { pino } from 'pino';
import { DeviceAuthorizer } from '../../agent/receiver/auth.js';
import { EmbeddedBroker, type ConnectionRefusal, type EmbeddedBrokerConfig } from '../../agent/receiver/broker.js';
import type { InboundMessage, Refusal, Settled } from '../../agent/receiver/message.js';
import { FrameSplitter } from '../../protocol/mqtt/frames.js';
import { freePort, waitFor } from './ports.js';

/**
 * An embedded broker with an anonymous authorizer and a sink that records what it is given, for the receiver suites
 * that drive it with real MQTT clients and raw sockets.
 */

const silent = pino({ level: 'silent' });

export interface Rig {
  broker: EmbeddedBroker;
  port: number;
  received: InboundMessage[];
  held: Settled[];
  refused: ConnectionRefusal[];
}

/** A broker whose sink holds every settle callback (`held`) unless `settleAtOnce`. */
export async function rig(
  t: { after(fn: () => unknown): void },
  opts: {
    settleAtOnce?: boolean;
    connectTimeoutMs?: number;
    /** settles each message with the refusal this returns, if any */
    refuse?: (msg: InboundMessage) => Refusal | undefined;
    broker?: Partial<EmbeddedBrokerConfig>;
  } = {},
): Promise<Rig> {
  const port = await freePort();
  const received: InboundMessage[] = [];
  const held: Settled[] = [];
  const refused: ConnectionRefusal[] = [];
  const auth = new DeviceAuthorizer({ allowAnonymous: true, credentialsFile: '', requireClientCert: false });
  const broker = new EmbeddedBroker(
    {
      host: '127.0.0.1',
      tcpPort: port,
      wsPort: 0,
      maxConnections: 100,
      connectTimeoutMs: opts.connectTimeoutMs ?? 5000,
      tls: { port: 0, cert: '', key: '', ca: '', requireClientCert: false },
      ...opts.broker,
    },
    auth,
    (msg, done) => {
      received.push({ ...msg, payload: Buffer.from(msg.payload) });
      const refusal = opts.refuse?.(msg);
      if (refusal !== undefined) done(undefined, refusal);
      else if (opts.settleAtOnce) done();
      else held.push(done);
    },
    silent,
    { onConnectionRefused: (r) => refused.push(r) },
  );
  await broker.start();
  t.after(() => broker.stop());
  return { broker, port, received, held, refused };
}

export async function client(
  t: { after(fn: () => unknown): void },
  port: number,
  opts: Parameters<typeof connectAsync>[1],
) {
  const c = await connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, ...opts });
  t.after(() => c.endAsync(true));
  return c;
}

/** A raw socket that has sent CONNECT (clean session, keepalive `keepalive`) and collects what comes back. */
export async function rawDevice(port: number, clientId: string, keepalive = 60) {
  const socket = tcpConnect({ host: '127.0.0.1', port });
  const packets: { type: number; body: Buffer }[] = [];
  const frames = new FrameSplitter();
  socket.on('data', (chunk: Buffer) =>
    frames.push(chunk, (first, body) => void packets.push({ type: first >> 4, body: Buffer.from(body) })),
  );
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive }));
  await waitFor('CONNACK', () => packets.some((p) => p.type === 2));
  return { socket, packets, closed };
}

export function publishAsync(c: MqttClient, topic: string, payload: string, qos: 0 | 1 | 2): Promise<void> {
  return new Promise((resolve, reject) => c.publish(topic, payload, { qos }, (err) => (err ? reject(err) : resolve())));
}
