import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
import { pino } from 'pino';
import { Agent } from '../../../agent/agent.js';
import { agentConfigSpec } from '../../../agent/config.js';
import { validateConfig } from '../../../protocol/config/schema.js';
import { metricValue, repoRoot, startAgent } from '../../helpers/agent-process.js';
import { pahoPublish } from '../../helpers/mosquitto.js';
import { freePort, waitFor } from '../../helpers/ports.js';
import { tempDir } from '../../helpers/tmp.js';

const MiB = 1 << 20;
const paho = join(repoRoot, 'test', 'helpers', 'paho_publish.py');

/**
 * The agent in this process with the resident memory its limiter reads set by the test: every other part is real
 * (sockets, LevelDB, MQTT.js and paho devices), so the states can be crossed exactly when the test says.
 */
test('over the soft limit: QoS 0 dropped and counted, QoS 1 held unacknowledged on both broker paths, logins refused with CONNACK 3; under it again: everything held is stored and acknowledged', async (t) => {
  const dir = tempDir(t);
  const [mqttPort, httpPort] = [await freePort(), await freePort()];
  const { config, problems } = validateConfig(
    agentConfigSpec,
    {
      agent: { id: 'gw-mem', data_dir: join(dir, 'data') },
      mqtt: { broker: { tcp: { host: '127.0.0.1', port: mqttPort }, allow_anonymous: true } },
      http: { host: '127.0.0.1', port: httpPort },
      uplink: { endpoints: [] },
      batch: { max_delay: '20ms' },
      processors: [{ memory_limiter: { limit: '100MiB', spike: '20MiB', check_interval: '20ms' } }],
    },
    { env: {} },
  );
  assert.deepEqual(problems, []);
  let rss = 10 * MiB;
  const agent = new Agent(config, pino({ level: 'silent' }), () => rss);
  await agent.start();
  t.after(() => agent.stop());
  const metrics = async () => (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const url = `mqtt://127.0.0.1:${mqttPort}`;

  // A device on the lean path (clean session, no will) and one on aedes' (a will), connected while memory is low.
  const lean = await connectAsync(url, { clientId: 'lean-1', reconnectPeriod: 0 });
  const will = await connectAsync(url, {
    clientId: 'will-1',
    reconnectPeriod: 0,
    will: { topic: 'devices/will-1/events', payload: Buffer.from('{"body":"gone"}'), qos: 0, retain: false },
  });
  t.after(() => Promise.all([lean.endAsync(true), will.endAsync(true)]));
  assert.equal(metricValue(await metrics(), 'otlp_edge_agent_memory_limiter_limit_bytes{limit="soft"}'), 80 * MiB);

  rss = 90 * MiB;
  await waitFor('the limiter over its soft limit', async () =>
    metricValue(await metrics(), 'otlp_edge_agent_memory_limiter_state') === 1 ? true : null,
  );

  await lean.publishAsync('devices/lean-1/telemetry', '{"seq":0,"t":1}', { qos: 0 });
  await waitFor('the QoS 0 reading dropped and counted', async () =>
    metricValue(await metrics(), 'otlp_edge_agent_messages_dropped_total{reason="memory_limit"}') === 1 ? true : null,
  );
  let leanAcked = false;
  let willAcked = false;
  const leanAck = lean.publishAsync('devices/lean-1/telemetry', '{"seq":1,"t":2}', { qos: 1 }).then(() => {
    leanAcked = true;
  });
  const willAck = will.publishAsync('devices/will-1/telemetry', '{"seq":1,"t":3}', { qos: 1 }).then(() => {
    willAcked = true;
  });
  await waitFor('both QoS 1 readings held', async () =>
    metricValue(await metrics(), 'otlp_edge_agent_memory_limiter_held_messages') === 2 ? true : null,
  );

  // A new device (paho) is told "server unavailable".
  const refused = await pahoPublish(paho, ['--port', String(mqttPort), '--device', 'late-1', '--count', '1']);
  assert.equal(refused.rc, 3);
  // An MQTT 5 device (MQTT.js v5) reads it as CONNACK reason code 0x88.
  await assert.rejects(
    connectAsync(url, { clientId: 'late-5', protocolVersion: 5, reconnectPeriod: 0 }),
    (e: { code?: number }) => e.code === 0x88,
  );
  assert.equal(metricValue(await metrics(), 'otlp_edge_agent_connections_refused_total{reason="memory_limit"}'), 2);
  assert.equal(agent.bufferStats?.points, 0, 'nothing held was stored');
  assert.equal(leanAcked || willAcked, false, 'nothing held was acknowledged');

  rss = 10 * MiB;
  await Promise.all([leanAck, willAck]);
  const m = await metrics();
  assert.equal(metricValue(m, 'otlp_edge_agent_memory_limiter_state'), 0);
  assert.equal(metricValue(m, 'otlp_edge_agent_memory_limiter_held_messages'), 0);
  // Each reading is one metric and its seq: two points each, stored before its ack.
  assert.equal(agent.bufferStats?.points, 4);
  // The lean device, paused while held, reads and is served again.
  await lean.publishAsync('devices/lean-1/telemetry', '{"seq":2,"t":4}', { qos: 1 });
  const late = await pahoPublish(paho, ['--port', String(mqttPort), '--device', 'late-1', '--count', '1']);
  assert.deepEqual([late.rc, late.acked], [0, [0]]);
});

/** Resident memory of a process from /proc, bytes. */
const rssOf = (pid: number) =>
  Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

/**
 * Devices that each send `messages` QoS 1 messages of `readings` readings (~200 KB of JSON) at once, without waiting
 * for acks: decoded, each message is about a megabyte of readings waiting for the group commit.
 */
async function flood(port: number, devices: number, messages: number, readings: number) {
  const payload = (d: number, m: number) =>
    JSON.stringify(
      Array.from({ length: readings }, (_, i) => ({ seq: m * readings + i, temperature: 20 + (i % 50) / 10, door: d })),
    );
  const clients = await Promise.all(
    Array.from({ length: devices }, (_, d) =>
      connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `flood-${d}`, reconnectPeriod: 0, keepalive: 120 }),
    ),
  );
  const acks = clients.flatMap((c, d) =>
    Array.from({ length: messages }, (_, m) =>
      c.publishAsync(`devices/flood-${d}/telemetry`, payload(d, m), { qos: 1 }),
    ),
  );
  return { acks: Promise.all(acks), close: () => Promise.all(clients.map((c) => c.endAsync(true))) };
}

test('an input flood: the agent process stays under its memory limit, and every acknowledged reading is stored', async (t) => {
  const dir = tempDir(t);
  const agent = await startAgent(dir, {
    processors: [{ memory_limiter: { limit: '160MiB', spike: '40MiB', check_interval: '20ms' } }],
    log: { level: 'warn' },
  });
  t.after(() => agent.kill9());
  const pid = agent.child.pid!;
  let peak = rssOf(pid);
  const sampler = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 10);
  t.after(() => clearInterval(sampler));
  const DEVICES = 20;
  const MESSAGES = 5;
  const READINGS = 4000;
  const f = await flood(agent.mqttPort, DEVICES, MESSAGES, READINGS);
  t.after(() => f.close());
  await f.acks;
  clearInterval(sampler);
  const m = await agent.metrics();
  assert.ok(peak < 160 * MiB, `peak RSS ${(peak / MiB).toFixed(1)} MiB, limit 160 MiB`);
  // The limiter did the holding (the flood crossed the soft limit), and let every message go again.
  assert.ok(metricValue(m, 'otlp_edge_agent_memory_limiter_held_total') > 0, 'the soft limit was reached');
  assert.equal(metricValue(m, 'otlp_edge_agent_memory_limiter_held_messages'), 0);
  // Every message was acknowledged, so every reading (temperature, door and seq: 3 points) is in the buffer.
  assert.equal(metricValue(m, 'otlp_edge_agent_points_stored_total'), DEVICES * MESSAGES * READINGS * 3);
});
