import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { bufferDump, startAgent } from '../../helpers/agent-process.js';
import { startMosquitto } from '../../helpers/mosquitto.js';
import { waitFor } from '../../helpers/ports.js';
import { seqsByDevice } from '../../helpers/otlp-readings.js';
import { tempDir } from '../../helpers/tmp.js';

const clientMode = (port: number, protocolVersion = '5') => ({
  mqtt: {
    broker: { enabled: false },
    client: {
      enabled: true,
      url: `mqtt://127.0.0.1:${port}`,
      client_id: 'agent-under-test',
      protocol_version: protocolVersion,
    },
  },
});

async function publish(
  port: number,
  device: string,
  seqs: number[],
  qos: 0 | 1 = 1,
  properties?: { contentType: string },
  encode: (s: number) => Buffer | string = (s) => JSON.stringify({ seq: s, temperature: 20 + s / 100 }),
) {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
    clientId: device,
    protocolVersion: properties ? 5 : 4,
  });
  await Promise.all(
    seqs.map((s) =>
      c.publishAsync(`devices/${device}/telemetry`, encode(s), { qos, ...(properties ? { properties } : {}) }),
    ),
  );
  await c.endAsync();
}

test('broker client mode: every QoS 1 message published to mosquitto is stored, many in flight at once', async (t) => {
  const dir = tempDir(t);
  const broker = await startMosquitto(dir);
  t.after(() => broker.stop());
  const agent = await startAgent(dir, clientMode(broker.port));
  t.after(() => agent.kill9());

  const seqs = Array.from({ length: 2000 }, (_, i) => i);
  await Promise.all([publish(broker.port, 'm-1', seqs), publish(broker.port, 'm-2', seqs.slice(0, 500))]);
  await waitFor(
    'all readings stored',
    async () => (await agent.metrics()).includes('otlp_edge_agent_readings_received_total{qos="1"} 2500'),
    15_000,
  );
  assert.equal(await agent.stop(), 0);
  const stored = seqsByDevice(bufferDump(agent.configPath));
  assert.deepEqual(stored.get('m-1'), seqs);
  assert.deepEqual(stored.get('m-2'), seqs.slice(0, 500));
});

test('broker client mode: MQTT 5 content-type application/cbor is honoured', async (t) => {
  const dir = tempDir(t);
  const broker = await startMosquitto(dir);
  t.after(() => broker.stop());
  const agent = await startAgent(dir, clientMode(broker.port));
  t.after(() => agent.kill9());
  const { encode } = await import('cbor-x');
  // A CBOR map starting with 0xa2 would be sniffed as CBOR anyway; a CBOR array of one map starts with 0x81 too.
  // Content-type is what makes a payload beginning with '{'-like bytes unambiguous, so check both paths store.
  await publish(broker.port, 'cbor-1', [1, 2, 3], 1, { contentType: 'application/cbor' }, (s) =>
    encode({ seq: s, v: s * 1.5 }),
  );
  await waitFor(
    'cbor readings stored',
    async () => (await agent.metrics()).includes('otlp_edge_agent_readings_received_total{qos="1"} 3'),
    10_000,
  );
  await agent.stop();
  assert.deepEqual(seqsByDevice(bufferDump(agent.configPath)).get('cbor-1'), [1, 2, 3]);
});

test('broker client mode: an agent killed before its commit gets the messages redelivered by mosquitto', async (t) => {
  const dir = tempDir(t);
  const broker = await startMosquitto(dir);
  t.after(() => broker.stop());
  const agent = await startAgent(dir, clientMode(broker.port, '4'));
  // Freeze the agent: mosquitto sends it the messages, it can neither store nor acknowledge them; then kill it.
  agent.child.kill('SIGSTOP');
  const seqs = Array.from({ length: 300 }, (_, i) => i);
  await publish(broker.port, 'r-1', seqs);
  await new Promise((r) => setTimeout(r, 300));
  await agent.kill9();

  // Same client id, persistent session: mosquitto redelivers everything that was never acknowledged.
  const again = await startAgent(dir, clientMode(broker.port, '4'), {
    mqttPort: agent.mqttPort,
    httpPort: agent.httpPort,
  });
  t.after(() => again.kill9());
  await waitFor(
    'redelivered readings stored',
    async () => (await again.metrics()).includes('otlp_edge_agent_readings_received_total{qos="1"} 300'),
    15_000,
  );
  assert.equal(await again.stop(), 0);
  assert.deepEqual(seqsByDevice(bufferDump(again.configPath)).get('r-1'), seqs);
});
