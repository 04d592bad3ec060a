import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { connectAsync, type MqttClient } from 'mqtt';
import { WebSocket } from 'ws';
import { bufferDump, metricValue, startAgent } from '../../helpers/agent-process.js';
import { seqsByDevice } from '../../helpers/otlp-readings.js';
import { freePort, waitFor } from '../../helpers/ports.js';
import { tempDir } from '../../helpers/tmp.js';
import { upsertCredential } from '../../../agent/receiver/credentials.js';

const FAST = { N: 1024, r: 8, p: 1 };

/** A bare MQTT 3.1.1 CONNECT over TCP: 'connack' when the broker answers, 'closed' when it closes first. */
async function rawConnect(port: number, clientId: string): Promise<'connack' | 'closed'> {
  const id = Buffer.from(clientId);
  const body = Buffer.concat([Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 60, 0, id.length]), id]);
  const s = tcpConnect(port, '127.0.0.1');
  s.on('error', () => undefined);
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish('closed'), 5000);
    const finish = (r: 'connack' | 'closed') => {
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    s.on('data', (d: Buffer) => finish(d[0] === 0x20 ? 'connack' : 'closed'));
    s.on('close', () => finish('closed'));
    s.on('connect', () => s.write(Buffer.concat([Buffer.from([0x10, body.length]), body])));
  });
}

async function device(port: number, id: string, password: string): Promise<MqttClient> {
  return connectAsync(`mqtt://127.0.0.1:${port}`, {
    clientId: id,
    username: id,
    password,
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
}

test('a QoS 1 publish to a topic the device may not use is acknowledged and dropped; the connection stays and later readings all arrive', async (t) => {
  const dir = tempDir(t);
  const passwd = join(dir, 'devices.passwd');
  await upsertCredential(passwd, 'dev-1', 'pw-1-secret', FAST);
  const agent = await startAgent(dir, { mqtt: { broker: { allow_anonymous: false, credentials_file: passwd } } });
  t.after(() => agent.kill9());
  const c = await device(agent.mqttPort, 'dev-1', 'pw-1-secret');
  t.after(() => c.end(true));
  let closed = false;
  c.on('close', () => (closed = true));
  const errors: { code: string; topic: string }[] = [];
  c.on('message', (_topic, payload) => errors.push(JSON.parse(payload.toString())));
  await c.subscribeAsync('devices/dev-1/errors', { qos: 0 });

  for (const topic of [
    'devices/dev-2/telemetry',
    'devices/dev-1/unknown',
    'devices//telemetry',
    `devices/${'x'.repeat(300)}/telemetry`,
  ]) {
    await c.publishAsync(topic, JSON.stringify({ seq: 99, temp: 1 }), { qos: 1 }); // resolves on PUBACK
  }
  await c.publishAsync('devices/dev-1/telemetry', JSON.stringify({ seq: 100, temp: 2 }), { qos: 1, retain: true });
  for (let seq = 1; seq <= 5; seq++)
    await c.publishAsync('devices/dev-1/telemetry', JSON.stringify({ seq, temp: 20 + seq }), { qos: 1 });
  assert.equal(closed, false, 'the connection stayed up');
  await waitFor('the device told why, on its errors topic', () => errors.length >= 4);
  assert.ok(errors.every((e) => e.code === 'OTLPEDGE_AUTH_PUBLISH_DENIED'));
  assert.deepEqual(errors.map((e) => e.topic).slice(0, 3), [
    'devices/dev-2/telemetry',
    'devices/dev-1/unknown',
    'devices//telemetry',
  ]);
  const metrics = await agent.metrics();
  assert.equal(metricValue(metrics, 'otlp_edge_agent_auth_refusals_total{reason="publish_denied"}'), 4);
  assert.equal(metricValue(metrics, 'otlp_edge_agent_retain_cleared_total'), 1);

  await agent.stop();
  const seqs = seqsByDevice(bufferDump(agent.configPath));
  assert.deepEqual(
    seqs.get('dev-1'),
    [1, 2, 3, 4, 5, 100],
    'the retained reading is kept as data, the refused ones dropped',
  );
  assert.equal(seqs.size, 1);
});

test('retained publishes are not stored: a later subscriber receives nothing', async (t) => {
  const dir = tempDir(t);
  const agent = await startAgent(dir); // anonymous: may subscribe to anything
  t.after(() => agent.kill9());
  const pub = await connectAsync(`mqtt://127.0.0.1:${agent.mqttPort}`, { clientId: 'sim-1', protocolVersion: 4 });
  await pub.publishAsync('devices/sim-1/telemetry', JSON.stringify({ seq: 1, t: 1 }), { qos: 1, retain: true });
  await pub.endAsync();
  const sub = await connectAsync(`mqtt://127.0.0.1:${agent.mqttPort}`, { clientId: 'watcher', protocolVersion: 4 });
  t.after(() => sub.end(true));
  const got: string[] = [];
  sub.on('message', (topic) => got.push(topic));
  await sub.subscribeAsync('devices/+/telemetry', { qos: 1 });
  await sub.publishAsync('devices/watcher/telemetry', JSON.stringify({ seq: 1, t: 2 }), { qos: 1 });
  await waitFor('the live message arrives', () => got.length >= 1);
  assert.deepEqual(got, ['devices/watcher/telemetry'], 'no retained message was replayed');
});

test('a CONNECT that claims 200 MiB is dropped at its header with bounded memory; max_connections closes the rest', async (t) => {
  const dir = tempDir(t);
  const agent = await startAgent(dir, { mqtt: { broker: { max_connections: 3 } } });
  t.after(() => agent.kill9());
  const rss = async () => metricValue(await agent.metrics(), 'otlp_edge_agent_process_resident_memory_bytes');
  const before = await rss();
  const chunk = Buffer.alloc(1 << 20, 0x41);
  const hostile = await Promise.all(
    [0, 1].map(async () => {
      const s = tcpConnect(agent.mqttPort, '127.0.0.1');
      s.on('error', () => undefined); // the agent resets the connection: expected
      await once(s, 'connect');
      const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
      s.write(Buffer.from([0x10, 0x80, 0x80, 0x80, 0x64])); // CONNECT, remaining length 200 MiB (varint)
      let sent = 0;
      for (let i = 0; i < 96 && !s.destroyed; i++) {
        if (!s.write(chunk)) await Promise.race([new Promise((resolve) => s.once('drain', resolve)), closed]);
        sent += chunk.length;
      }
      await closed;
      return sent;
    }),
  );
  assert.ok(
    hostile.every((sent) => sent < 96 * chunk.length),
    `closed before 96 MiB were written (${hostile.join(', ')})`,
  );
  const grown = (await rss()) - before;
  assert.ok(grown < 40 * 1024 * 1024, `RSS grew by ${(grown / 1048576).toFixed(0)} MiB`);
  assert.equal(
    metricValue(await agent.metrics(), 'otlp_edge_agent_connections_refused_total{reason="packet_too_large"}'),
    2,
  );

  const clients = await Promise.all(
    [1, 2, 3].map((i) => connectAsync(`mqtt://127.0.0.1:${agent.mqttPort}`, { clientId: `c${i}`, reconnectPeriod: 0 })),
  );
  t.after(() => clients.forEach((c) => c.end(true)));
  assert.equal(await rawConnect(agent.mqttPort, 'c4'), 'closed', 'the 4th connection is closed without a CONNACK');
  assert.equal(
    metricValue(await agent.metrics(), 'otlp_edge_agent_connections_refused_total{reason="max_connections"}'),
    1,
  );
  clients[0].end(true);
  await waitFor('a slot is free again', async () => (await rawConnect(agent.mqttPort, 'c5')) === 'connack');
});

test('a WebSocket frame over the packet bound closes the connection before it is taken in', async (t) => {
  const dir = tempDir(t);
  const wsPort = await freePort();
  const agent = await startAgent(dir, { mqtt: { broker: { ws: { port: wsPort } } } });
  t.after(() => agent.kill9());
  const ws = new WebSocket(`ws://127.0.0.1:${wsPort}/`, 'mqtt');
  ws.on('error', () => undefined);
  await once(ws, 'open');
  const closed = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)));
  ws.send(Buffer.alloc(8 * 1024 * 1024, 0x30));
  assert.equal(await closed, 1009, 'closed with "message too big"');
});

test('a credentials reload disconnects devices whose password was removed; the others stay', async (t) => {
  const dir = tempDir(t);
  const passwd = join(dir, 'devices.passwd');
  await upsertCredential(passwd, 'keep-1', 'pw-keep-secret', FAST);
  await upsertCredential(passwd, 'gone-1', 'pw-gone-secret', FAST);
  const agent = await startAgent(dir, { mqtt: { broker: { allow_anonymous: false, credentials_file: passwd } } });
  t.after(() => agent.kill9());
  const keep = await device(agent.mqttPort, 'keep-1', 'pw-keep-secret');
  const gone = await device(agent.mqttPort, 'gone-1', 'pw-gone-secret');
  t.after(() => {
    keep.end(true);
    gone.end(true);
  });
  let goneClosed = false;
  gone.on('close', () => (goneClosed = true));
  writeFileSync(
    passwd,
    readFileSync(passwd, 'utf8')
      .split('\n')
      .filter((l) => !l.startsWith('gone-1:'))
      .join('\n'),
  );
  agent.child.kill('SIGHUP');
  await waitFor('the removed device is disconnected', () => goneClosed);
  assert.equal(keep.connected, true);
  assert.equal(metricValue(await agent.metrics(), 'otlp_edge_agent_revoked_disconnects_total'), 1);
  await assert.rejects(device(agent.mqttPort, 'gone-1', 'pw-gone-secret'), 'and cannot log in again');
});
