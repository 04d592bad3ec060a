import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { connectAsync } from 'mqtt';
import { metricValue, repoRoot, startAgent } from '../../helpers/agent-process.js';
import { startAggregator } from '../../helpers/aggregator-process.js';
import { pahoPublish } from '../../helpers/mosquitto.js';
import { freePort, waitFor } from '../../helpers/ports.js';
import { startProxy } from '../../helpers/tcp-proxy.js';
import { tempDir } from '../../helpers/tmp.js';
import { uplinkServiceDefinition } from '../../../protocol/uplink/service.js';
import { AckStatus, type FrameAck, type UplinkFrame } from '../../../protocol/uplink/messages.js';
import { UplinkStreamEncoder } from '../../../protocol/uplink/frame/stream.js';
import { MAX_STREAMS_PER_AGENT } from '../../../aggregator/ingest/stream-service.js';

/**
 * The uplink stream end to end, real processes: batches committed one by one cross the link as few frames, and
 * everything the agent acknowledged arrives exactly once whatever happens to the frames — an ack lost and the
 * batches regrouped on the retry, the agent killed while batches wait for company, an aggregator that does not take
 * the agent's frame format, a backlog stored by the agent before streams existed.
 */

const paho = join(repoRoot, 'test', 'helpers', 'paho_publish.py');

/**
 * Publishes readings one at a time with MQTT.js, each waiting for its PUBACK: every reading is its own commit and
 * stored batch, as at field load.
 */
async function publishEach(port: number, device: string, count: number, startSeq = 0) {
  const client = await connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: device });
  try {
    for (let i = 0; i < count; i++) {
      const seq = startSeq + i;
      await client.publishAsync(
        `devices/${device}/telemetry`,
        JSON.stringify({ ts: 1732280000000 + seq, seq, temperature: 20 + seq / 10 }),
        { qos: 1 },
      );
    }
  } finally {
    await client.endAsync();
  }
}

async function publish(port: number, device: string, count: number, startSeq = 0) {
  const r = await pahoPublish(paho, [
    '--port',
    String(port),
    '--device',
    device,
    '--count',
    String(count),
    '--qos',
    '1',
    '--start-seq',
    String(startSeq),
  ]);
  assert.equal(r.acked.length, count, 'every reading acknowledged (durable at the agent)');
}

test('batches committed one by one cross the link as few frames, and each reading is in state once', async (t) => {
  const dir = tempDir(t);
  const agg = await startAggregator(dir);
  t.after(() => agg.kill9());
  const agent = await startAgent(dir, {
    uplink: { endpoints: [`127.0.0.1:${agg.grpcPort}`], max_delay: '400ms' },
  });
  t.after(() => agent.kill9());
  await publishEach(agent.mqttPort, 'few-1', 40);
  await waitFor('delivered', async () => (await agg.get('/v1/devices/few-1')).body?.counts?.received === 40);
  await waitFor(
    'acknowledged',
    async () => metricValue(await agent.metrics(), 'otlp_edge_agent_uplink_backlog_batches') === 0,
  );
  const m = await agent.metrics();
  const batches = metricValue(m, 'otlp_edge_agent_uplink_batches_total{outcome="ok"}');
  const requests = metricValue(m, 'otlp_edge_agent_uplink_requests_total{outcome="ok"}');
  assert.ok(batches >= 20, `${batches} stored batches delivered`);
  assert.ok(requests * 4 <= batches, `${batches} batches went in ${requests} requests`);
  const aggMetrics = await (await fetch(`http://127.0.0.1:${agg.apiPort}/metrics`)).text();
  assert.equal(metricValue(aggMetrics, 'otlp_edge_aggregator_uplink_frames_total{outcome="ok"}'), requests);
  assert.ok(metricValue(aggMetrics, 'otlp_edge_aggregator_reading_delay_seconds_count') >= 40);
  const device = (await agg.get('/v1/devices/few-1')).body;
  assert.deepEqual(device.counts, { received: 40, duplicates: 0, missing: 0 });
  assert.equal(device.latest.temperature.value, 20 + 39 / 10);
});

test('lost acks: frames applied but never answered are sent again regrouped with newer batches; every stored batch is deduplicated exactly', async (t) => {
  const dir = tempDir(t);
  const agg = await startAggregator(dir);
  t.after(() => agg.kill9());
  const proxy = await startProxy(() => agg.grpcPort);
  t.after(() => proxy.close());
  const agent = await startAgent(dir, {
    uplink: { endpoints: [`127.0.0.1:${proxy.port}`], timeout: '1500ms', max_delay: '200ms' },
  });
  t.after(() => agent.kill9());
  await publish(agent.mqttPort, 'regroup-warmup', 1);
  await waitFor('warm-up delivered', async () => (await agg.get('/v1/devices/regroup-warmup')).status === 200);

  proxy.setCut(true);
  await publishEach(agent.mqttPort, 'regroup-1', 20);
  await waitFor(
    'first readings applied',
    async () => (await agg.get('/v1/devices/regroup-1')).body?.counts?.received === 20,
  );
  // More batches while the first ones are unanswered: the retries carry old and new batches in other groupings.
  await publishEach(agent.mqttPort, 'regroup-1', 15, 20);
  await waitFor('all applied', async () => (await agg.get('/v1/devices/regroup-1')).body?.counts?.received === 35);
  proxy.reset();
  proxy.setCut(false);
  await waitFor(
    'agent backlog drained',
    async () => metricValue(await agent.metrics(), 'otlp_edge_agent_uplink_backlog_batches') === 0,
    30_000,
  );
  const metrics = await (await fetch(`http://127.0.0.1:${agg.apiPort}/metrics`)).text();
  const duplicates = metricValue(metrics, 'otlp_edge_aggregator_uplink_batches_total{outcome="duplicate"}');
  assert.ok(duplicates >= 10, `the resent batches were recognised as applied (${duplicates})`);
  const device = (await agg.get('/v1/devices/regroup-1')).body;
  assert.deepEqual(device.counts, { received: 35, duplicates: 0, missing: 0 }, 'no reading applied twice');
  const series = (await agg.get('/v1/devices/regroup-1/series?metric=temperature&from=1732279000000&to=1732290000000'))
    .body;
  assert.equal(
    series.points.reduce((n: number, p: { count: number }) => n + p.count, 0),
    35,
    'rollups hold each reading once',
  );
});

test('an agent killed while batches wait for company loses nothing: they go out after the restart', async (t) => {
  const dir = tempDir(t);
  const agg = await startAggregator(dir);
  t.after(() => agg.kill9());
  const overrides = { uplink: { endpoints: [`127.0.0.1:${agg.grpcPort}`], max_delay: '30s' } };
  const agent = await startAgent(dir, overrides);
  t.after(() => agent.kill9());
  await publish(agent.mqttPort, 'linger-1', 12);
  assert.equal((await agg.get('/v1/devices/linger-1')).status, 404, 'still waiting for company');
  await agent.kill9();
  const again = await startAgent(dir, { uplink: { ...overrides.uplink, max_delay: '100ms' } });
  t.after(() => again.kill9());
  await waitFor(
    'delivered after the restart',
    async () => (await agg.get('/v1/devices/linger-1')).body?.counts?.received === 12,
  );
  assert.deepEqual((await agg.get('/v1/devices/linger-1')).body.counts, { received: 12, duplicates: 0, missing: 0 });
});

test('an aggregator refuses, clearly, a stream in a frame format it does not read (agents then send batch by batch: see the transport contract)', async (t) => {
  const dir = tempDir(t);
  const agg = await startAggregator(dir);
  t.after(() => agg.kill9());
  // A future agent's first frame, in format 2.
  const Client = grpc.makeGenericClientConstructor(
    uplinkServiceDefinition as unknown as grpc.ServiceDefinition,
    'Uplink',
  );
  const client = new Client(`127.0.0.1:${agg.grpcPort}`, grpc.credentials.createInsecure()) as unknown as {
    Stream(md: grpc.Metadata): grpc.ClientDuplexStream<UplinkFrame, FrameAck>;
    close(): void;
  };
  t.after(() => client.close());
  const call = client.Stream(new grpc.Metadata());
  const refused = new Promise<grpc.ServiceError>((resolve) => call.on('error', resolve));
  call.on('data', () => assert.fail('a frame in an unknown format must not be answered'));
  call.write({
    frame: 1,
    payload: Buffer.from('whatever format 2 is'),
    points: 1,
    segments: 1,
    ackedBelow: 0,
    ringVersion: 0,
    agentId: 'gw-future',
    bufferId: 7,
    format: 2,
  });
  const err = await refused;
  assert.equal(err.code, grpc.status.FAILED_PRECONDITION);
  assert.match(err.details, /format 2; this aggregator reads format 1/);
  const metrics = await (await fetch(`http://127.0.0.1:${agg.apiPort}/metrics`)).text();
  assert.equal(metricValue(metrics, 'otlp_edge_aggregator_uplink_streams_refused_total{reason="format"}'), 1);
});

test('a backlog stored by the agent before uplink streams existed is delivered whole after the upgrade', async (t) => {
  const dir = tempDir(t);
  const agg = await startAggregator(dir);
  t.after(() => agg.kill9());
  const data = join(dir, 'data');
  mkdirSync(data, { recursive: true });
  cpSync(join(repoRoot, 'test', 'integration', 'e2e', 'testdata', 'buffer-v0.1-format1'), join(data, 'buffer'), {
    recursive: true,
    filter: (src) => !src.endsWith('README.md'),
  });
  const agent = await startAgent(dir, {
    agent: { id: 'gw-legacy' },
    uplink: { endpoints: [`127.0.0.1:${agg.grpcPort}`] },
  });
  t.after(() => agent.kill9());
  await waitFor('backlog delivered', async () => (await agg.get('/v1/devices/legacy-1')).body?.counts?.received === 30);
  const device = (await agg.get('/v1/devices/legacy-1')).body;
  assert.deepEqual(device.counts, { received: 30, duplicates: 0, missing: 0 });
  assert.equal(device.latest.temperature.value, 23);
  await waitFor(
    'backlog drained, logs batch included',
    async () => metricValue(await agent.metrics(), 'otlp_edge_agent_uplink_backlog_batches') === 0,
  );
});

test('an outage backlog is packed compactly while the aggregator is away, then delivered exactly once', async (t) => {
  const dir = tempDir(t);
  const grpcPort = await freePort();
  const agent = await startAgent(dir, {
    uplink: { endpoints: [`127.0.0.1:${grpcPort}`], timeout: '1s' },
    buffer: { pack_after: '1s' },
  });
  t.after(() => agent.kill9());
  await publishEach(agent.mqttPort, 'packed-1', 60);
  const stored = metricValue(await agent.metrics(), 'otlp_edge_agent_uplink_backlog_bytes');
  await waitFor(
    'backlog packed',
    async () => metricValue(await agent.metrics(), 'otlp_edge_agent_buffer_packed_batches_total') >= 40,
    20_000,
  );
  const packed = metricValue(await agent.metrics(), 'otlp_edge_agent_uplink_backlog_bytes');
  assert.ok(packed * 2 < stored, `backlog of ${stored} bytes packed into ${packed}`);
  const agg = await startAggregator(dir, {}, { grpcPort, apiPort: await freePort() });
  t.after(() => agg.kill9());
  await waitFor('delivered', async () => (await agg.get('/v1/devices/packed-1')).body?.counts?.received === 60, 30_000);
  assert.deepEqual((await agg.get('/v1/devices/packed-1')).body.counts, { received: 60, duplicates: 0, missing: 0 });
  await waitFor(
    'backlog drained',
    async () => metricValue(await agent.metrics(), 'otlp_edge_agent_uplink_backlog_batches') === 0,
  );
});

test('one agent may hold only a few streams open on a node: the next is refused with RESOURCE_EXHAUSTED', async (t) => {
  const dir = tempDir(t);
  const agg = await startAggregator(dir);
  t.after(() => agg.kill9());
  const Client = grpc.makeGenericClientConstructor(
    uplinkServiceDefinition as unknown as grpc.ServiceDefinition,
    'Uplink',
  );
  const client = new Client(`127.0.0.1:${agg.grpcPort}`, grpc.credentials.createInsecure()) as unknown as {
    Stream(md: grpc.Metadata): grpc.ClientDuplexStream<UplinkFrame, FrameAck>;
    close(): void;
  };
  t.after(() => client.close());
  const open = (agentId: string) => {
    const call = client.Stream(new grpc.Metadata());
    const answered = new Promise<FrameAck | grpc.ServiceError>((resolve) => {
      call.on('data', resolve);
      call.on('error', resolve);
    });
    const payload = new UplinkStreamEncoder(3).encode([]);
    call.write({
      frame: 1,
      payload,
      points: 0,
      segments: 0,
      ackedBelow: 0,
      ringVersion: 0,
      agentId,
      bufferId: 1,
      format: 1,
    });
    return { call, answered };
  };
  const streams = Array.from({ length: MAX_STREAMS_PER_AGENT }, () => open('gw-greedy'));
  t.after(() => streams.forEach((s) => s.call.cancel()));
  for (const s of streams) assert.equal(((await s.answered) as FrameAck).status, AckStatus.OK);
  const extra = await open('gw-greedy').answered;
  assert.equal((extra as grpc.ServiceError).code, grpc.status.RESOURCE_EXHAUSTED);
  assert.match((extra as grpc.ServiceError).details, /gw-greedy' has 8 uplink streams open/);
  const metrics = await (await fetch(`http://127.0.0.1:${agg.apiPort}/metrics`)).text();
  assert.equal(metricValue(metrics, 'otlp_edge_aggregator_uplink_streams_refused_total{reason="stream_limit"}'), 1);
  const other = open('gw-modest');
  t.after(() => other.call.cancel());
  assert.equal(((await other.answered) as FrameAck).status, AckStatus.OK, 'other agents are not affected');
});
