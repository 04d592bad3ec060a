import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { DeviceAuthorizer } from '../../../../agent/receiver/auth.js';
import { EmbeddedBroker } from '../../../../agent/receiver/broker.js';
import { BrokerClientReceiver } from '../../../../agent/receiver/client.js';
import type { InboundMessage, Settled } from '../../../../agent/receiver/message.js';
import { startMosquitto } from '../../../helpers/mosquitto.js';
import { freePort, waitFor } from '../../../helpers/ports.js';
import { tempDir } from '../../../helpers/tmp.js';

/**
 * One contract both receivers keep (as MQTT.js runs one store suite for every store): a message reaches the sink with
 * its topic, payload and QoS; a QoS 1 message the sink settles with an error is not acknowledged and comes again
 * (the connection is dropped, the sender redelivers); once settled it does not come again.
 */

interface Rig {
  /** A device publisher connected where this receiver takes messages from. */
  publisher: MqttClient;
  close(): Promise<void>;
}

type Sink = (msg: InboundMessage, settled: Settled) => void;
const silent = pino({ level: 'silent' });

async function embedded(t: { after(fn: () => unknown): void }, sink: Sink): Promise<Rig> {
  const auth = new DeviceAuthorizer({ allowAnonymous: true, credentialsFile: '', requireClientCert: false });
  const port = await freePort();
  const broker = new EmbeddedBroker(
    {
      host: '127.0.0.1',
      tcpPort: port,
      wsPort: 0,
      maxConnections: 100,
      connectTimeoutMs: 5000,
      tls: { port: 0, cert: '', key: '', ca: '', requireClientCert: false },
    },
    auth,
    sink,
    silent,
  );
  await broker.start();
  t.after(() => broker.stop());
  const publisher = await connectAsync(`mqtt://127.0.0.1:${port}`, {
    clientId: 'dev-c1',
    clean: false,
    reconnectPeriod: 100,
  });
  return { publisher, close: async () => publisher.endAsync(true) };
}

async function brokerClient(t: { after(fn: () => unknown): void }, sink: Sink): Promise<Rig> {
  const mosquitto = await startMosquitto(tempDir(t));
  t.after(() => mosquitto.stop());
  const receiver = new BrokerClientReceiver(
    {
      url: `mqtt://127.0.0.1:${mosquitto.port}`,
      username: '',
      password: '',
      clientId: 'agent-contract',
      ca: '',
      sharedGroup: '',
      protocolVersion: 4,
      filters: ['devices/+/telemetry'],
    },
    sink,
    silent,
  );
  receiver.start();
  t.after(() => receiver.stop());
  await waitFor('the receiver subscribed', () => receiver.connected);
  const publisher = await connectAsync(`mqtt://127.0.0.1:${mosquitto.port}`, {
    clientId: 'dev-c1',
    reconnectPeriod: 100,
  });
  return { publisher, close: async () => publisher.endAsync(true) };
}

for (const [name, make] of [
  ['embedded broker', embedded],
  ['broker client (mosquitto)', brokerClient],
] as const) {
  test(`${name} receiver keeps the receiver contract: delivery, redelivery after a failed settle, once after success`, async (t) => {
    const seen: InboundMessage[] = [];
    let failFirst = true;
    const sink: Sink = (msg, settled) => {
      seen.push(msg);
      if (msg.qos > 0 && failFirst) {
        failFirst = false;
        settled(new Error('not stored (disk full)'));
      } else settled();
    };
    const rig = await make(t, sink);
    t.after(() => rig.close());

    // The broker client may start receiving a moment after subscribing: publish QoS 0 until one arrives.
    await waitFor('a QoS 0 message arrives', async () => {
      await rig.publisher.publishAsync('devices/c1/telemetry', '{"t":0}', { qos: 0 });
      return seen.some((m) => m.qos === 0);
    });
    const q0 = seen.find((m) => m.qos === 0)!;
    assert.equal(q0.topic, 'devices/c1/telemetry');
    assert.equal(Buffer.from(q0.payload).toString(), '{"t":0}');

    await rig.publisher.publishAsync('devices/c1/telemetry', '{"seq":1,"t":1}', { qos: 1 });
    const reliable = () => seen.filter((m) => m.qos === 1);
    await waitFor('the QoS 1 message comes again after the failed settle', () => reliable().length >= 2, 15_000);
    for (const m of reliable()) {
      assert.equal(m.topic, 'devices/c1/telemetry');
      assert.equal(Buffer.from(m.payload).toString(), '{"seq":1,"t":1}');
    }
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(reliable().length, 2, 'settled once: not delivered again');
  });
}
