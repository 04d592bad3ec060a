import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import mqtt, { type IConnackPacket, type IClientOptions, type MqttClient } from 'mqtt';
import { generate, parser as mqttParser, type Packet } from 'mqtt-packet';
import { freePort, waitFor } from '../../../helpers/ports.js';
import { rig } from '../../../helpers/broker-rig.js';

/**
 * MQTT 5 on the embedded broker's lean path: sessions, wills, the receive maximum, topic aliases, retain and
 * subscriptions, with MQTT.js in v5 mode, and raw MQTT 5 packets (mqtt-packet) for what a client library would not
 * send.
 */

async function v5(port: number, opts: IClientOptions, ws = false): Promise<{ c: MqttClient; connack: IConnackPacket }> {
  const c = mqtt.connect(ws ? `ws://127.0.0.1:${port}` : `mqtt://127.0.0.1:${port}`, {
    protocolVersion: 5,
    reconnectPeriod: 0,
    ...opts,
  });
  const connack = await new Promise<IConnackPacket>((resolve, reject) => {
    c.once('connect', resolve);
    c.once('error', reject);
  });
  return { c, connack };
}

/** A raw MQTT 5 connection: sends CONNECT, collects decoded packets, resolves `closed` when the server closes. */
async function raw5(port: number, connect: Record<string, unknown>) {
  const socket = tcpConnect({ host: '127.0.0.1', port });
  const packets: Packet[] = [];
  const p = mqttParser({ protocolVersion: 5 });
  p.on('packet', (pk: Packet) => packets.push(pk));
  socket.on('data', (d: Buffer) => p.parse(d));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(
    generate(
      { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 60, ...connect } as never,
      { protocolVersion: 5 },
    ),
  );
  await waitFor('CONNACK', () => packets.some((x) => x.cmd === 'connack') || socket.destroyed);
  const send = (packet: Record<string, unknown>) => socket.write(generate(packet as never, { protocolVersion: 5 }));
  return { socket, packets, closed, send };
}

test('MQTT 5: an empty client id is assigned one; a will is sent when the connection drops, not after DISCONNECT', async (t) => {
  const r = await rig(t, { settleAtOnce: true });
  const anon = await v5(r.port, { clientId: '' });
  assert.match(String(anon.connack.properties?.assignedClientIdentifier), /^aedes_/, 'an assigned client id');
  anon.c.end(true);

  const will = { topic: 'devices/w-1/events', payload: Buffer.from('{"body":"gone"}'), qos: 1 as const, retain: false };
  const dropped = await v5(r.port, { clientId: 'w-1', will });
  dropped.c.stream.destroy(); // the connection drops without DISCONNECT
  await waitFor('the will stored', () => r.received.some((m) => m.topic === 'devices/w-1/events'));

  const polite = await v5(r.port, { clientId: 'w-2', will: { ...will, topic: 'devices/w-2/events' } });
  await polite.c.endAsync(); // DISCONNECT 0x00: the will is discarded [MQTT-3.1.2-10]
  const delayed = await v5(r.port, {
    clientId: 'w-3',
    properties: { sessionExpiryInterval: 60 },
    will: { ...will, topic: 'devices/w-3/events', properties: { willDelayInterval: 30 } },
  });
  delayed.c.stream.destroy();
  // Back within the will delay: the session continues and the will is not sent [MQTT-3.1.3-9].
  const back = await v5(r.port, { clientId: 'w-3', clean: false, properties: { sessionExpiryInterval: 60 } });
  assert.equal(back.connack.sessionPresent, true, 'the session outlived its connection');
  await back.c.endAsync();
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(
    r.received.map((m) => [m.topic, String(m.payload), m.qos]),
    [['devices/w-1/events', '{"body":"gone"}', 1]],
  );
});

test('MQTT 5: session expiry is bounded and said in CONNACK; a kept session keeps its subscriptions', async (t) => {
  const r = await rig(t, { settleAtOnce: true, broker: { maxSessionExpiry: 120 } });
  const first = await v5(r.port, { clientId: 'sess-1', properties: { sessionExpiryInterval: 86_400 } });
  assert.equal(first.connack.properties?.sessionExpiryInterval, 120, 'the granted expiry, not the asked one');
  assert.equal(first.connack.sessionPresent, false);
  await first.c.subscribeAsync('devices/sess-1/errors', { qos: 0 });
  first.c.stream.destroy();
  await waitFor('the first connection gone', () => r.broker !== null && first.c.stream.destroyed);
  await new Promise((resolve) => setTimeout(resolve, 100));

  const again = await v5(r.port, { clientId: 'sess-1', clean: false, properties: { sessionExpiryInterval: 60 } });
  t.after(() => again.c.end(true));
  assert.equal(again.connack.sessionPresent, true);
  assert.equal(again.connack.properties?.sessionExpiryInterval, undefined, 'granted as asked: not repeated');
  const heard = new Promise<string>((resolve) => again.c.once('message', (_t, p) => resolve(String(p))));
  r.broker.publish('devices/sess-1/errors', '{"code":"X"}'); // no SUBSCRIBE on this connection: the session's
  assert.equal(await heard, '{"code":"X"}');

  const fresh = await v5(r.port, { clientId: 'sess-2', clean: false });
  assert.equal(fresh.connack.sessionPresent, false, 'no session was kept for an id never seen');
  fresh.c.end(true);
});

test('MQTT 5: a second login with the same client id takes over with DISCONNECT 0x8E', async (t) => {
  const r = await rig(t, { settleAtOnce: true });
  const old = await v5(r.port, { clientId: 'twin-5' });
  const told = new Promise<number>((resolve) => old.c.once('disconnect', (p) => resolve(p.reasonCode ?? 0)));
  const next = await v5(r.port, { clientId: 'twin-5' });
  t.after(() => next.c.end(true));
  assert.equal(await told, 0x8e);
  old.c.end(true);
});

test('MQTT 5: more QoS 1 publishes in flight than the receive maximum closes with DISCONNECT 0x93', async (t) => {
  const r = await rig(t, { broker: { receiveMaximum: 3 } }); // the sink holds every message: nothing is acked
  const d = await raw5(r.port, { clientId: 'greedy' });
  const connack = d.packets.find((x) => x.cmd === 'connack') as IConnackPacket;
  assert.equal(connack.properties?.receiveMaximum, 3);
  for (let id = 1; id <= 4; id++)
    d.send({ cmd: 'publish', topic: 'devices/greedy/telemetry', payload: `{"seq":${id}}`, qos: 1, messageId: id });
  await d.closed;
  const disconnect = d.packets.find((x) => x.cmd === 'disconnect') as { reasonCode?: number } | undefined;
  assert.equal(disconnect?.reasonCode, 0x93);
  assert.equal(r.received.length, 3, 'the fourth was not taken in');
});

test('MQTT 5: a retained publish, unknown or out-of-bounds topic aliases, AUTH and an oversize packet close with their reason codes', async (t) => {
  const r = await rig(t, { settleAtOnce: true, broker: { topicAliasMaximum: 2 } });
  const cases: [Record<string, unknown>, number][] = [
    [{ cmd: 'publish', topic: 'devices/p/telemetry', payload: '{}', qos: 0, retain: true }, 0x9a],
    [{ cmd: 'publish', topic: '', payload: '{}', qos: 0, properties: { topicAlias: 1 } }, 0x82],
    [{ cmd: 'publish', topic: 'devices/p/telemetry', payload: '{}', qos: 0, properties: { topicAlias: 3 } }, 0x94],
    [
      { cmd: 'publish', topic: `devices/${'x'.repeat(1100)}`, payload: '{}', qos: 0, properties: { topicAlias: 1 } },
      0x94,
    ],
    [{ cmd: 'auth', reasonCode: 0x18 }, 0x82],
  ];
  for (const [packet, code] of cases) {
    const d = await raw5(r.port, { clientId: 'p' });
    d.send(packet);
    await d.closed;
    const disconnect = d.packets.find((x) => x.cmd === 'disconnect') as { reasonCode?: number } | undefined;
    assert.equal(disconnect?.reasonCode, code, JSON.stringify(packet));
  }
  assert.deepEqual(r.refused, new Array(cases.length).fill('protocol_error'));
  const huge = await raw5(r.port, { clientId: 'huge' });
  huge.socket.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f])); // a PUBLISH claiming 256 MiB
  await huge.closed;
  const tooLarge = huge.packets.find((x) => x.cmd === 'disconnect') as { reasonCode?: number } | undefined;
  assert.equal(tooLarge?.reasonCode, 0x95, 'packet too large, past the Maximum Packet Size in CONNACK');
  assert.equal(r.received.length, 0);

  const retainedWill = await raw5(r.port, {
    clientId: 'rw',
    will: { topic: 'devices/rw/events', payload: Buffer.from('{}'), qos: 0, retain: true },
  });
  await retainedWill.closed;
  assert.equal((retainedWill.packets[0] as IConnackPacket).reasonCode, 0x9a, 'retain not supported');
  const enhanced = await raw5(r.port, { clientId: 'ea', properties: { authenticationMethod: 'SCRAM-SHA-1' } });
  await enhanced.closed;
  assert.equal((enhanced.packets[0] as IConnackPacket).reasonCode, 0x8c, 'bad authentication method');
});

test('MQTT 5: SUBACK reason codes; No Local keeps a device from hearing itself; MQTT 5 over WebSocket', async (t) => {
  const wsPort = await freePort();
  const r = await rig(t, { settleAtOnce: true, broker: { wsPort } });
  const { c } = await v5(wsPort, { clientId: 'sub-5' }, true);
  t.after(() => c.end(true));
  await assert.rejects(
    c.subscribeAsync('$share/g/devices/+/telemetry', { qos: 0 }),
    /Shared Subscriptions not supported/,
    'SUBACK 0x9E, as MQTT.js reads it',
  );
  const heard: string[] = [];
  c.on('message', (topic) => heard.push(topic));
  const granted = await c.subscribeAsync({
    'devices/sub-5/telemetry': { qos: 1, nl: true },
    'devices/sub-5/errors': { qos: 0 },
  });
  assert.deepEqual(
    granted.map((g) => g.qos),
    [0, 0],
    'granted at QoS 0',
  );
  await c.publishAsync('devices/sub-5/telemetry', '{"seq":1,"v":1}', { qos: 1 });
  r.broker.publish('devices/sub-5/errors', '{}');
  await waitFor('the first errors report', () => heard.length === 1);
  assert.deepEqual(heard, ['devices/sub-5/errors'], 'No Local: its own telemetry is not sent back');
  await c.subscribeAsync('devices/#', { qos: 0 });
  await c.publishAsync('devices/sub-5/telemetry', '{"seq":2,"v":2}', { qos: 1 });
  r.broker.publish('devices/sub-5/errors', '{}');
  await waitFor('the second errors report', () => heard.length === 3);
  assert.deepEqual(
    heard,
    ['devices/sub-5/errors', 'devices/sub-5/telemetry', 'devices/sub-5/errors'],
    'through devices/#, which has no No Local, it is',
  );
  assert.deepEqual(
    r.received.map((m) => m.topic),
    ['devices/sub-5/telemetry', 'devices/sub-5/telemetry'],
  );
  const unsub = await new Promise<number[]>((resolve) =>
    c.unsubscribe(['devices/#', 'never/subscribed'], (_err, packet) =>
      resolve((packet as { granted?: number[] } | undefined)?.granted ?? []),
    ),
  );
  assert.deepEqual(unsub, [0, 0x11]);
});

test('MQTT 5: random packets after CONNECT only ever close that connection; the broker keeps serving', async (t) => {
  const r = await rig(t, { settleAtOnce: true });
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 150; i++) {
    const d = await raw5(r.port, { clientId: `fuzz-${i}` });
    const body = Buffer.from(Array.from({ length: rand(40) }, () => rand(256)));
    // A real packet type with random flags, then a body that is mostly property-list shaped garbage.
    const first = ((1 + rand(15)) << 4) | rand(16);
    d.socket.write(Buffer.concat([Buffer.from([first, body.length]), body]));
    d.socket.end();
    await d.closed;
  }
  const { c } = await v5(r.port, { clientId: 'after-fuzz' });
  t.after(() => c.end(true));
  await c.publishAsync('devices/after-fuzz/telemetry', '{"seq":1,"v":1}', { qos: 1 });
  assert.ok(
    r.received.some((m) => m.topic === 'devices/after-fuzz/telemetry'),
    'still serving',
  );
});
