import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import mqtt, { connectAsync, type IConnackPacket, type MqttClient } from 'mqtt';
import { encode } from 'cbor-x';
import { bufferDump, metricValue, repoRoot, startAgent } from '../../helpers/agent-process.js';
import { metricsByDevice, seqsByDevice } from '../../helpers/otlp-readings.js';
import { waitFor } from '../../helpers/ports.js';
import { tempDir } from '../../helpers/tmp.js';
import { upsertCredential } from '../../../agent/receiver/credentials.js';

/**
 * MQTT 5 on the embedded broker, seen by real MQTT 5 clients: MQTT.js in v5 mode and Eclipse paho-mqtt's MQTTv5
 * client. Every refusal keeps the connection and says why in the PUBACK's reason code.
 */

const FAST = { N: 1024, r: 8, p: 1 };
const PAHO_V5 = join(repoRoot, 'test', 'helpers', 'paho_v5.py');

async function v5(port: number, id: string, password: string): Promise<{ c: MqttClient; connack: IConnackPacket }> {
  const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
    clientId: id,
    username: id,
    password,
    protocolVersion: 5,
    reconnectPeriod: 0,
  });
  const connack = await new Promise<IConnackPacket>((resolve, reject) => {
    c.once('connect', resolve);
    c.once('error', reject);
  });
  return { c, connack };
}

/** Publishes at QoS 1 and returns the PUBACK reason code (0 when accepted), as MQTT.js reports it. */
function publish5(c: MqttClient, topic: string, payload: string | Buffer, properties = {}): Promise<number> {
  return new Promise((resolve) =>
    c.publish(topic, payload, { qos: 1, properties }, (err) =>
      resolve(err ? ((err as { code?: number }).code ?? -1) : 0),
    ),
  );
}

interface PahoAck {
  code: number;
  name: string;
  reason: string | null;
}

function pahoV5(args: string[]): Promise<{ rc: number; connack: Record<string, unknown>; acks: (PahoAck | null)[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/python3', [PAHO_V5, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`paho v5 exited ${code}: ${err}`));
      resolve(JSON.parse(out.trim().split('\n').pop()!));
    });
  });
}

test('MQTT 5: refusals answered with reason codes (0x87, 0x99, 0x97) to MQTT.js and paho; the connection stays', async (t) => {
  const dir = tempDir(t);
  const passwd = join(dir, 'devices.passwd');
  await upsertCredential(passwd, 'js-5', 'pw-js-5', FAST);
  await upsertCredential(passwd, 'paho-5', 'pw-paho-5', FAST);
  await upsertCredential(passwd, 'fast-5', 'pw-fast-5', FAST);
  const agent = await startAgent(dir, {
    mqtt: { broker: { allow_anonymous: false, credentials_file: passwd, max_publish_rate: 20 } },
  });
  t.after(() => agent.kill9());

  const { c, connack } = await v5(agent.mqttPort, 'js-5', 'pw-js-5');
  t.after(() => c.end(true));
  assert.equal(connack.reasonCode ?? 0, 0);
  assert.equal(connack.properties?.receiveMaximum, 100);
  assert.equal(connack.properties?.topicAliasMaximum, 64);
  assert.equal(connack.properties?.retainAvailable, false, 'the agent keeps no retained messages and says so');
  assert.ok((connack.properties?.maximumPacketSize ?? 0) > 256 * 1024, 'maximum packet size advertised');
  const errors: { code: string; reason: string }[] = [];
  c.on('message', (_topic, payload) => errors.push(JSON.parse(payload.toString())));
  await c.subscribeAsync('devices/js-5/errors', { qos: 0 });

  assert.equal(await publish5(c, 'devices/other/telemetry', '{"seq":0,"v":1}'), 0x87, 'not authorized');
  assert.equal(await publish5(c, 'devices/js-5/telemetry', '{"seq":1,"v":'), 0x99, 'payload format invalid');
  assert.equal(
    await publish5(c, 'devices/js-5/telemetry', '{"seq":2,"v":2}', { contentType: 'text/plain' }),
    0x99,
    'a content type that is neither JSON nor CBOR',
  );
  assert.equal(
    await publish5(c, 'devices/js-5/telemetry', encode({ seq: 3, v: 3 }), { contentType: 'application/cbor' }),
    0,
    'CBOR named by its content type',
  );
  assert.equal(await publish5(c, 'devices/js-5/telemetry', '{"seq":4,"v":4}'), 0, 'still connected, still stored');
  await waitFor('the errors topic reports', () => errors.length >= 3);
  assert.deepEqual(
    errors.map((e) => e.reason),
    ['publish_denied', 'bad_json', 'bad_content_type'],
  );

  // Over max_publish_rate (20/s, a burst of 20): the rest of a burst of 60 gets 0x97 (quota exceeded).
  const fast = await v5(agent.mqttPort, 'fast-5', 'pw-fast-5');
  t.after(() => fast.c.end(true));
  const codes = await Promise.all(
    Array.from({ length: 60 }, (_, i) => publish5(fast.c, 'devices/fast-5/telemetry', `{"seq":${i},"v":1}`)),
  );
  const accepted = codes.filter((x) => x === 0).length;
  assert.ok(accepted >= 20 && accepted < 60, `a burst of 20 passes, the rest is refused (${accepted} accepted)`);
  assert.ok(
    codes.every((x) => x === 0 || x === 0x97),
    `only 0 or 0x97: ${codes.join(',')}`,
  );
  assert.ok(metricValue(await agent.metrics(), 'otlp_edge_agent_messages_rejected_total{reason="rate_limited"}') > 0);

  // paho-mqtt's MQTTv5 client sees the same reason codes.
  const paho = await pahoV5([
    '--port',
    String(agent.mqttPort),
    '--client-id',
    'paho-5',
    '--username',
    'paho-5',
    '--password',
    'pw-paho-5',
    '--messages',
    JSON.stringify([
      { topic: 'devices/paho-5/telemetry', payload: '{"seq":1,"t":1}', qos: 1 },
      { topic: 'devices/js-5/telemetry', payload: '{"seq":2,"t":2}', qos: 1 },
      { topic: 'devices/paho-5/telemetry', payload: 'not json, not cbor either \u00ff', qos: 1 },
      { topic: 'devices/paho-5/telemetry', payload: '{"seq":3,"t":3}', qos: 1, topic_alias: 7 },
    ]),
  ]);
  assert.equal(paho.rc, 0);
  assert.equal(paho.connack.ReceiveMaximum, 100);
  assert.deepEqual(
    paho.acks.map((a) => [a?.code, a?.name]),
    [
      [0, 'Success'],
      [0x87, 'Not authorized'],
      [0x99, 'Payload format invalid'],
      [0, 'Success'],
    ],
  );
  assert.match(paho.acks[1]!.reason ?? '', /may not publish to "devices\/js-5\/telemetry"/, 'a reason string says why');

  await agent.stop();
  const stored = seqsByDevice(bufferDump(agent.configPath));
  assert.deepEqual(stored.get('js-5'), [3, 4]);
  assert.deepEqual(stored.get('paho-5'), [1, 3]);
  assert.equal(stored.get('fast-5')?.length, accepted, 'every accepted message stored, no refused one');
});

test('MQTT 5: topic-alias publishes are stored exactly; user properties become reading attributes', async (t) => {
  const dir = tempDir(t);
  const agent = await startAgent(dir);
  t.after(() => agent.kill9());
  const c = await connectAsync(`mqtt://127.0.0.1:${agent.mqttPort}`, {
    clientId: 'alias-1',
    protocolVersion: 5,
    reconnectPeriod: 0,
  });
  t.after(() => c.end(true));
  const codes: number[] = [];
  codes.push(await publish5(c, 'devices/alias-1/telemetry', '{"seq":0,"v":0}', { topicAlias: 3 }));
  for (let i = 1; i < 10; i++) codes.push(await publish5(c, '', `{"seq":${i},"v":${i}}`, { topicAlias: 3 }));
  codes.push(
    await publish5(c, 'devices/alias-1/telemetry', '{"seq":10,"v":10,"fw":"from-payload"}', {
      userProperties: { site: 'line-3', fw: 'from-property', batch: ['a', 'b'] },
    }),
  );
  assert.deepEqual(codes, new Array(11).fill(0));

  // An alias never set is a protocol error: DISCONNECT 0x82, and nothing of it is stored.
  const bad = await connectAsync(`mqtt://127.0.0.1:${agent.mqttPort}`, {
    clientId: 'alias-2',
    protocolVersion: 5,
    reconnectPeriod: 0,
  });
  const disconnected = new Promise<number>((resolve) => bad.once('disconnect', (p) => resolve(p.reasonCode ?? 0)));
  bad.publish('', '{"seq":1,"v":1}', { qos: 0, properties: { topicAlias: 9 } });
  assert.equal(await disconnected, 0x82);
  bad.end(true);

  await agent.stop();
  const dump = bufferDump(agent.configPath);
  assert.deepEqual(
    seqsByDevice(dump).get('alias-1'),
    Array.from({ length: 11 }, (_, i) => i),
  );
  assert.equal(seqsByDevice(dump).get('alias-2'), undefined);
  const v = metricsByDevice(dump).get('alias-1')!.get('v')!;
  assert.deepEqual(
    v.map((p) => p.value),
    Array.from({ length: 11 }, (_, i) => i),
  );
  assert.deepEqual(v[0].attributes, {}, 'no user properties, no attributes');
  assert.deepEqual(
    v[10].attributes,
    { site: 'line-3', batch: 'b', fw: 'from-payload' },
    "each user property an attribute, the payload's own attribute first, a repeated key its last value",
  );
});
