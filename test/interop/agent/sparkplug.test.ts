import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import mqtt from 'mqtt';
import { bufferDump, metricValue, startAgent, type AgentProcess } from '../../helpers/agent-process.js';
import { startMosquitto } from '../../helpers/mosquitto.js';
import { metricsByDevice } from '../../helpers/otlp-readings.js';
import { startAggregator, type AggregatorProcess } from '../../helpers/aggregator-process.js';
import { waitFor } from '../../helpers/ports.js';
import { tempDir } from '../../helpers/tmp.js';

/**
 * Sparkplug B end to end: Eclipse Tahu's JavaScript edge node client (npm sparkplug-client) publishes births, data
 * and deaths to the agent's embedded broker; the values, names and online/offline events are read back from the
 * aggregator's API.
 */

const require = createRequire(import.meta.url);
const sparkplug = require('sparkplug-client') as {
  newClient(cfg: Record<string, unknown>): EdgeNodeClient;
};
const tahu = require('sparkplug-payload').get('spBv1.0') as {
  encodePayload(p: unknown): Uint8Array;
  decodePayload(b: Uint8Array): { metrics: { name: string; value: unknown }[] };
};

interface EdgeNodeClient {
  on(event: string, fn: (...args: any[]) => void): void;
  publishNodeBirth(p: unknown): void;
  publishDeviceBirth(device: string, p: unknown): void;
  publishNodeData(p: unknown): void;
  publishDeviceData(device: string, p: unknown): void;
  stop(): void;
  seq: number;
  client: { stream: { destroy(): void } };
}

/** An edge node 'plant1' of group G1 with device 'pump1', birthing whenever it (re)connects or is asked to. */
function edgeNode(port: number) {
  const client = sparkplug.newClient({
    serverUrl: `mqtt://127.0.0.1:${port}`,
    username: 'plant1',
    password: 'unused',
    groupId: 'G1',
    edgeNode: 'plant1',
    clientId: 'plant1',
    version: 'spBv1.0',
    mqttOptions: { reconnectPeriod: 200 },
  });
  let births = 0;
  const birth = () => {
    births++;
    const timestamp = Date.now();
    client.publishNodeBirth({
      timestamp,
      metrics: [
        { name: 'Node Control/Rebirth', type: 'Boolean', value: false },
        { name: 'Uptime', alias: 1, type: 'Int64', value: 10 },
      ],
    });
    client.publishDeviceBirth('pump1', {
      timestamp,
      metrics: [
        { name: 'Inputs/Pressure', alias: 2, type: 'Double', value: 1.5 },
        { name: 'Inputs/Running', alias: 3, type: 'Boolean', value: true },
        { name: 'Count', alias: 4, type: 'Int32', value: -3 },
        { name: 'Mode', alias: 5, type: 'String', value: 'auto' },
        {
          name: 'Motor',
          type: 'Template',
          value: {
            templateRef: 'MotorType',
            isDefinition: false,
            metrics: [{ name: 'Speed', type: 'Int32', value: 1200 }],
          },
        },
      ],
    });
  };
  client.on('birth', birth);
  client.on('ncmd', (payload: { metrics: { name: string; value: unknown }[] }) => {
    if (payload.metrics.some((m) => m.name === 'Node Control/Rebirth' && m.value === true)) birth();
  });
  return { client, births: () => births };
}

async function latest(agg: AggregatorProcess, id: string): Promise<Record<string, number>> {
  const r = await agg.get(`/v1/devices/${encodeURIComponent(id)}`);
  if (r.status !== 200) return {};
  return Object.fromEntries(
    Object.entries(r.body.latest as Record<string, { value: number }>).map(([k, v]) => [k, v.value]),
  );
}

async function events(agg: AggregatorProcess, id: string): Promise<{ body: string; severity: string }[]> {
  const r = await agg.get(`/v1/devices/${encodeURIComponent(id)}/events?limit=100`);
  return r.status === 200 ? r.body.events : [];
}

async function rig(t: { after(fn: () => unknown): void }) {
  const dir = tempDir(t);
  const agg = await startAggregator(dir);
  t.after(() => agg.kill9());
  const overrides = {
    uplink: { endpoints: [`127.0.0.1:${agg.grpcPort}`] },
    batch: { max_delay: '50ms' },
    mqtt: { sparkplug: { enabled: true, reorder_timeout: '300ms' } },
  };
  const agent = await startAgent(dir, overrides);
  t.after(() => agent.kill9());
  return { dir, agg, agent, overrides };
}

test('Sparkplug B: births, data by alias, a template, a historical value and deaths reach the aggregator', async (t) => {
  const { agg, agent } = await rig(t);
  const node = edgeNode(agent.mqttPort);
  t.after(() => node.client.stop());
  await waitFor(
    'pump1 born at the aggregator',
    async () => (await latest(agg, 'G1:plant1:pump1'))['Count'] === -3,
    15_000,
  );
  assert.deepEqual(await latest(agg, 'G1:plant1:pump1'), {
    'Inputs/Pressure': 1.5,
    'Inputs/Running': 1,
    Count: -3,
    'Motor/Speed': 1200,
  });
  assert.equal((await latest(agg, 'G1:plant1'))['Uptime'], 10, "the edge node's own metrics on its own resource");

  const now = Date.now();
  node.client.publishDeviceData('pump1', {
    timestamp: now,
    metrics: [
      { alias: 2, type: 'Double', value: 2.5 }, // by alias only: the name comes from DBIRTH
      { name: 'Inputs/Pressure', alias: 2, type: 'Double', value: 0.5, timestamp: now - 60_000, isHistorical: true },
    ],
  });
  node.client.publishNodeData({ timestamp: now, metrics: [{ alias: 1, type: 'Int64', value: 11 }] });
  await waitFor('the DATA applied', async () => (await latest(agg, 'G1:plant1'))['Uptime'] === 11, 15_000);
  assert.equal((await latest(agg, 'G1:plant1:pump1'))['Inputs/Pressure'], 2.5, 'the historical value is older');
  const series = await agg.get(
    `/v1/devices/G1:plant1:pump1/series?metric=${encodeURIComponent('Inputs/Pressure')}&from=${now - 120_000}&to=${now + 60_000}`,
  );
  assert.equal(series.status, 200);
  const points = JSON.stringify(series.body);
  assert.match(points, /0\.5/, 'the historical point is stored at its own time');

  // A String metric changing alone (no number beside it) is kept as an event with the string as an attribute.
  node.client.publishDeviceData('pump1', { timestamp: now, metrics: [{ alias: 5, type: 'String', value: 'manual' }] });
  await waitFor(
    'the string event',
    async () => (await events(agg, 'G1:plant1:pump1')).some((e) => e.body === 'Sparkplug string metrics'),
    15_000,
  );
  const pumpEvents = await events(agg, 'G1:plant1:pump1');
  assert.ok(
    pumpEvents.some((e) => /online \(DBIRTH\)/.test(e.body)),
    JSON.stringify(pumpEvents),
  );
  const strings = pumpEvents.find((e) => e.body === 'Sparkplug string metrics') as unknown as {
    attributes: Record<string, unknown>;
  };
  assert.equal(strings.attributes.Mode, 'manual');

  // The edge node's connection drops: its will (NDEATH, matching bdSeq) takes it and its device offline.
  node.client.client.stream.destroy();
  await waitFor(
    'offline events',
    async () => (await events(agg, 'G1:plant1:pump1')).some((e) => /offline/.test(e.body)),
    15_000,
  );
  assert.ok((await events(agg, 'G1:plant1')).some((e) => e.body === 'Sparkplug edge node offline (NDEATH)'));
  const text = await agent.metrics();
  assert.ok(metricValue(text, 'otlp_edge_agent_sparkplug_messages_total{type="NDEATH"}') >= 1);
  assert.equal(metricValue(text, 'otlp_edge_agent_sparkplug_metrics_skipped_total{reason="unsupported_type"}'), 0);
});

test('Sparkplug B: a seq gap asks a rebirth; DATA before BIRTH is refused; a stale NDEATH is ignored; aliases survive an agent restart', async (t) => {
  const { dir, agg, agent, overrides } = await rig(t);
  const node = edgeNode(agent.mqttPort);
  t.after(() => node.client.stop());
  await waitFor('born', async () => (await latest(agg, 'G1:plant1:pump1'))['Count'] === -3, 15_000);
  assert.equal(node.births(), 1);

  node.client.seq += 1; // one message lost on the way
  node.client.publishNodeData({ timestamp: Date.now(), metrics: [{ alias: 1, type: 'Int64', value: 12 }] });
  await waitFor('the rebirth asked and done', () => node.births() === 2, 15_000);
  const text = await agent.metrics();
  assert.equal(metricValue(text, 'otlp_edge_agent_sparkplug_lost_messages_total'), 1);
  assert.equal(metricValue(text, 'otlp_edge_agent_sparkplug_rebirth_requests_total'), 1);
  await waitFor(
    'the lost message counted missing for the edge node',
    async () => (await agg.get('/v1/devices/G1:plant1')).body?.counts?.missing === 1,
    15_000,
  );

  // Another edge node, raw MQTT: DATA before any BIRTH is refused and a rebirth is asked of it.
  const raw = await mqtt.connectAsync(`mqtt://127.0.0.1:${agent.mqttPort}`, { clientId: 'plant2', reconnectPeriod: 0 });
  t.after(() => raw.end(true));
  const commands: string[] = [];
  raw.on('message', (topic, payload) =>
    commands.push(
      `${topic} ${tahu
        .decodePayload(payload)
        .metrics.map((m) => `${m.name}=${m.value}`)
        .join(',')}`,
    ),
  );
  await raw.subscribeAsync('spBv1.0/G1/NCMD/plant2/#', { qos: 0 });
  const payload = (seq: number, metrics: unknown[]) =>
    Buffer.from(tahu.encodePayload({ timestamp: Date.now(), seq, metrics }));
  await raw.publishAsync('spBv1.0/G1/NDATA/plant2', payload(5, [{ alias: 1, type: 'Int32', value: 1 }]), { qos: 1 });
  await waitFor('a rebirth asked of plant2', () => commands.length === 1, 10_000);
  assert.deepEqual(commands, ['spBv1.0/G1/NCMD/plant2 Node Control/Rebirth=true']);
  assert.equal(
    metricValue(await agent.metrics(), 'otlp_edge_agent_sparkplug_refused_total{reason="data_before_birth"}'),
    1,
  );

  // plant2 births (bdSeq 4), then a death naming bdSeq 3 (a stale will of an older session) is ignored.
  await raw.publishAsync(
    'spBv1.0/G1/NBIRTH/plant2',
    payload(0, [
      { name: 'bdSeq', type: 'UInt64', value: 4 },
      { name: 'Level', alias: 7, type: 'Float', value: 0.25 },
    ]),
    { qos: 1 },
  );
  await raw.publishAsync('spBv1.0/G1/NDEATH/plant2', payload(0, [{ name: 'bdSeq', type: 'UInt64', value: 3 }]), {
    qos: 1,
  });
  assert.equal(metricValue(await agent.metrics(), 'otlp_edge_agent_sparkplug_refused_total{reason="stale_death"}'), 1);

  // The agent restarts: plant2's aliases were kept, so its DATA by alias is read without a new birth.
  await agent.stop();
  const again = await startAgent(dir, overrides, { mqttPort: agent.mqttPort, httpPort: agent.httpPort });
  t.after(() => again.kill9());
  const back = await mqtt.connectAsync(`mqtt://127.0.0.1:${again.mqttPort}`, {
    clientId: 'plant2',
    reconnectPeriod: 0,
  });
  t.after(() => back.end(true));
  await back.publishAsync('spBv1.0/G1/NDATA/plant2', payload(1, [{ alias: 7, type: 'Float', value: 0.75 }]), {
    qos: 1,
  });
  await waitFor('read by its kept alias', async () => (await latest(agg, 'G1:plant2'))['Level'] === 0.75, 15_000);
  assert.equal(
    metricValue(await again.metrics(), 'otlp_edge_agent_sparkplug_refused_total{reason="unknown_alias"}'),
    0,
  );
  // sparkplug-client reconnected to the restarted agent and was born again.
  await waitFor('plant1 born again after the restart', () => node.births() === 3, 15_000);
  void (again satisfies AgentProcess);
});

test('Sparkplug B in broker client mode: an edge node on mosquitto is read, and a rebirth is asked through mosquitto', async (t) => {
  const dir = tempDir(t);
  const broker = await startMosquitto(dir);
  t.after(() => broker.stop());
  const agent = await startAgent(dir, {
    batch: { max_delay: '50ms' },
    mqtt: {
      broker: { enabled: false },
      client: { enabled: true, url: `mqtt://127.0.0.1:${broker.port}`, client_id: 'agent-sp' },
      sparkplug: { enabled: true, reorder_timeout: '300ms' },
    },
  });
  t.after(() => agent.kill9());
  const node = edgeNode(broker.port);
  t.after(() => node.client.stop());
  await waitFor(
    'the births taken',
    async () => metricValue(await agent.metrics(), 'otlp_edge_agent_sparkplug_messages_total{type="DBIRTH"}') === 1,
    15_000,
  );
  node.client.seq += 1;
  node.client.publishNodeData({ timestamp: Date.now(), metrics: [{ alias: 1, type: 'Int64', value: 12 }] });
  await waitFor('a rebirth asked through mosquitto and done', () => node.births() === 2, 15_000);
  // The second birth travels edge node → mosquitto → agent: wait for the agent to have taken it before stopping.
  await waitFor(
    'the second births taken',
    async () => metricValue(await agent.metrics(), 'otlp_edge_agent_sparkplug_messages_total{type="DBIRTH"}') === 2,
    15_000,
  );
  assert.equal(await agent.stop(), 0);
  const metrics = metricsByDevice(bufferDump(agent.configPath));
  assert.deepEqual(
    metrics
      .get('G1:plant1:pump1')
      ?.get('Count')
      ?.map((p) => p.value),
    [-3, -3],
    'both births of pump1 stored',
  );
  assert.deepEqual(
    metrics
      .get('G1:plant1')
      ?.get('Uptime')
      ?.map((p) => p.value),
    [10, 12, 10],
  );
});
