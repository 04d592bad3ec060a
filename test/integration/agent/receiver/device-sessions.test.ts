import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { connect as tcpConnect } from 'node:net';
import { connectAsync } from 'mqtt';
import { generate } from 'mqtt-packet';
import { pahoPublish } from '../../../helpers/mosquitto.js';
import { repoRoot } from '../../../helpers/agent-process.js';
import { waitFor } from '../../../helpers/ports.js';
import { client, publishAsync, rawDevice, rig } from '../../../helpers/broker-rig.js';

/**
 * The embedded broker's lean device-session path (TCP and TLS devices with a clean session and no will), with real
 * MQTT.js and paho-mqtt clients and raw sockets for what no client library would send.
 */

test('lean path: a QoS 1 ack waits for its message to be stored, and acks leave in arrival order', async (t) => {
  const r = await rig(t);
  const c = await client(t, r.port, { clientId: 'lean-1', clean: true });
  const acked: number[] = [];
  const all = [0, 1, 2].map((i) =>
    publishAsync(c, 'devices/lean-1/telemetry', JSON.stringify({ seq: i, v: i }), 1).then(() => acked.push(i)),
  );
  await waitFor('three messages in the sink', () => r.received.length === 3);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(acked, [], 'nothing acknowledged before it is stored');

  r.held[2]();
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(acked, [], 'the third stored first still waits for the first two [MQTT-4.6.0-2]');
  r.held[0]();
  await waitFor('the first ack', () => acked.length === 1);
  r.held[1]();
  await Promise.all(all);
  assert.deepEqual(acked, [0, 1, 2]);
  assert.deepEqual(
    r.received.map((m) => [m.topic, m.qos, JSON.parse(String(m.payload)).seq]),
    [0, 1, 2].map((i) => ['devices/lean-1/telemetry', 1, i]),
  );
});

test('lean path: a message the sink cannot store is not acknowledged; the connection closes and it comes again', async (t) => {
  const r = await rig(t);
  const c = await connectAsync(`mqtt://127.0.0.1:${r.port}`, { clientId: 'lean-2', clean: true, reconnectPeriod: 100 });
  t.after(() => c.endAsync(true));
  const done = publishAsync(c, 'devices/lean-2/telemetry', '{"seq":1,"v":1}', 1);
  await waitFor('the message in the sink', () => r.held.length === 1);
  r.held[0](new Error('not stored (disk full)'));
  await waitFor('the message again after the reconnect', () => r.held.length === 2, 10_000);
  r.held[1]();
  await done;
  assert.equal(r.received.length, 2);
  assert.deepEqual(r.received[1].payload, r.received[0].payload);
});

test('lean path: paho-mqtt QoS 2 and QoS 0 are stored, and a resent QoS 2 PUBLISH is stored once', async (t) => {
  const r = await rig(t, { settleAtOnce: true });
  const paho = join(repoRoot, 'test', 'helpers', 'paho_publish.py');
  const out = await pahoPublish(paho, ['--port', String(r.port), '--device', 'paho-q2', '--count', '20', '--qos', '2']);
  assert.equal(out.acked.length, 20, 'paho saw every QoS 2 flow complete');
  assert.equal(r.received.filter((m) => m.qos === 2).length, 20);

  const d = await rawDevice(r.port, 'raw-q2');
  const pub = generate({
    cmd: 'publish',
    topic: 'devices/raw-q2/telemetry',
    payload: Buffer.from('{"seq":5,"v":5}'),
    qos: 2,
    messageId: 42,
    retain: false,
    dup: false,
  });
  d.socket.write(pub);
  await waitFor('PUBREC', () => d.packets.filter((p) => p.type === 5).length === 1);
  pub[0] |= 0x08; // DUP: the device did not see the PUBREC
  d.socket.write(pub);
  await waitFor('a second PUBREC', () => d.packets.filter((p) => p.type === 5).length === 2);
  d.socket.write(generate({ cmd: 'pubrel', messageId: 42 }));
  await waitFor('PUBCOMP', () => d.packets.some((p) => p.type === 7));
  assert.equal(r.received.filter((m) => m.topic === 'devices/raw-q2/telemetry').length, 1, 'stored once');
  d.socket.destroy();
});

test('a will or a persistent session goes to aedes; one client id holds one connection across both paths', async (t) => {
  const r = await rig(t, { settleAtOnce: true });
  const lean = await client(t, r.port, { clientId: 'twin', clean: true });
  const leanClosed = new Promise<void>((resolve) => lean.stream.once('close', () => resolve()));
  const withWill = await client(t, r.port, {
    clientId: 'twin',
    clean: true,
    will: { topic: 'devices/twin/events', payload: Buffer.from('{"gone":true}'), qos: 0, retain: false },
  });
  await leanClosed; // [MQTT-3.1.4-2]
  // aedes writes through this very module: its 65,536-buffer message-id cache (6 MB) is switched off.
  const packets = createRequire(import.meta.url)('mqtt-packet') as { writeToStream: { cacheNumbers: boolean } };
  assert.equal(packets.writeToStream.cacheNumbers, false);
  await publishAsync(withWill, 'devices/twin/telemetry', '{"seq":1,"v":1}', 1);
  const willClosed = new Promise<void>((resolve) => withWill.stream.once('close', () => resolve()));
  const again = await client(t, r.port, { clientId: 'twin', clean: true });
  await willClosed;
  await publishAsync(again, 'devices/twin/telemetry', '{"seq":2,"v":2}', 1);
  const persistent = await client(t, r.port, { clientId: 'sticky', clean: false });
  await publishAsync(persistent, 'devices/sticky/telemetry', '{"seq":3,"v":3}', 1);
  assert.deepEqual(
    r.received.map((m) => [m.topic, String(m.payload)]),
    [
      ['devices/twin/telemetry', '{"seq":1,"v":1}'],
      ['devices/twin/events', '{"gone":true}'], // the will: its connection was taken over, not ended
      ['devices/twin/telemetry', '{"seq":2,"v":2}'],
      ['devices/sticky/telemetry', '{"seq":3,"v":3}'],
    ],
    'stored from the aedes path, the lean path and the aedes path again',
  );
});

test('lean path: a device hears the agent on its errors topic', async (t) => {
  const r = await rig(t, { settleAtOnce: true });
  const c = await client(t, r.port, { clientId: 'listener', clean: true });
  await c.subscribeAsync('devices/listener/errors', { qos: 1 });
  const heard = new Promise<[string, string]>((resolve) =>
    c.once('message', (topic, p) => resolve([topic, String(p)])),
  );
  r.broker.publish('devices/other/errors', 'not for you');
  r.broker.publish('devices/listener/errors', '{"code":"OTLPEDGE_PAYLOAD_INVALID"}');
  assert.deepEqual(await heard, ['devices/listener/errors', '{"code":"OTLPEDGE_PAYLOAD_INVALID"}']);
  await c.unsubscribeAsync('devices/listener/errors');
});

test('lean path: silence past the keep-alive, no CONNECT in time, a wildcard topic and an oversize packet close the connection', async (t) => {
  const r = await rig(t, { settleAtOnce: true, connectTimeoutMs: 1000 });
  const bystander = await client(t, r.port, { clientId: 'bystander', clean: true });

  const quiet = await rawDevice(r.port, 'quiet', 1);
  let closed = false;
  void quiet.closed.then(() => (closed = true));
  // Keep-alive 1 s: closed after 1.5 s of silence (checked each second); a generous bound, not a timing test.
  await waitFor('the silent device closed', () => closed, 15_000);

  const mute = tcpConnect({ host: '127.0.0.1', port: r.port });
  mute.on('error', () => undefined);
  await new Promise<void>((resolve) => mute.once('close', () => resolve()));

  const wild = await rawDevice(r.port, 'wild');
  wild.socket.write(
    generate({
      cmd: 'publish',
      topic: 'devices/+/telemetry',
      payload: Buffer.from('{}'),
      qos: 0,
      retain: false,
      dup: false,
    }),
  );
  await wild.closed;

  const huge = await rawDevice(r.port, 'huge');
  huge.socket.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f])); // PUBLISH claiming 256 MiB
  await huge.closed;
  assert.deepEqual(
    r.refused,
    ['keepalive_timeout', 'connect_timeout', 'protocol_error', 'packet_too_large'],
    'each counted by reason',
  );

  await publishAsync(bystander, 'devices/bystander/telemetry', '{"seq":1,"v":1}', 1);
  assert.deepEqual(
    r.received.map((m) => m.topic),
    ['devices/bystander/telemetry'],
    'nothing stored from the closed connections; the others are served',
  );
});
