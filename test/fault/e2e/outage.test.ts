import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { metricValue, repoRoot, startAgent } from '../../helpers/agent-process.js';
import { startAggregator } from '../../helpers/aggregator-process.js';
import { pahoPublish } from '../../helpers/mosquitto.js';
import { waitFor } from '../../helpers/ports.js';
import { startProxy } from '../../helpers/tcp-proxy.js';
import { tempDir } from '../../helpers/tmp.js';

const paho = join(repoRoot, 'test', 'helpers', 'paho_publish.py');

test('aggregator outage: readings published meanwhile all arrive after the restart, missing = 0, backlog rises and falls', async (t) => {
  const dir = tempDir(t);
  let agg = await startAggregator(dir);
  t.after(() => agg.kill9());
  const agent = await startAgent(dir, {
    uplink: { endpoints: [`127.0.0.1:${agg.grpcPort}`], timeout: '2s' },
    batch: { max_delay: '50ms' },
  });
  t.after(() => agent.kill9());

  const first = await pahoPublish(paho, [
    '--port',
    String(agent.mqttPort),
    '--device',
    'out-1',
    '--count',
    '30',
    '--qos',
    '1',
  ]);
  assert.equal(first.acked.length, 30);
  await waitFor(
    'first readings received',
    async () => (await agg.get('/v1/devices/out-1')).body?.counts?.received === 30,
  );

  await agg.stop();
  for (let round = 0; round < 4; round++) {
    const r = await pahoPublish(paho, [
      '--port',
      String(agent.mqttPort),
      '--device',
      'out-1',
      '--count',
      '25',
      '--qos',
      '1',
      '--start-seq',
      String(30 + round * 25),
    ]);
    assert.equal(r.acked.length, 25, 'the agent keeps acknowledging while the aggregator is down');
  }
  const during = await agent.metrics();
  assert.ok(metricValue(during, 'otlp_edge_agent_uplink_backlog_batches') >= 1, 'backlog rose');
  assert.ok(metricValue(during, 'otlp_edge_agent_uplink_backlog_oldest_age_seconds') > 0);
  assert.ok(metricValue(during, 'otlp_edge_agent_uplink_batches_total{outcome="failed"}') >= 1);

  agg = await startAggregator(dir, {}, { grpcPort: agg.grpcPort, apiPort: agg.apiPort });
  const res = await waitFor(
    'backlog delivered',
    async () => {
      const r = await agg.get('/v1/devices/out-1');
      return r.body?.counts?.received === 130 ? r : null;
    },
    40_000,
  );
  assert.deepEqual(res.body.counts, { received: 130, duplicates: 0, missing: 0 });
  assert.equal(res.body.latest.temperature.value, 20 + 129 / 10, 'the newest reading is the latest');
  await waitFor(
    'backlog fell to zero',
    async () => metricValue(await agent.metrics(), 'otlp_edge_agent_uplink_backlog_batches') === 0,
    10_000,
  );
});

test('lost ack: the aggregator commits, dies before the agent sees OK; the retry is a duplicate and rollups do not double', async (t) => {
  const dir = tempDir(t);
  let agg = await startAggregator(dir);
  t.after(() => agg.kill9());
  const proxy = await startProxy(() => agg.grpcPort);
  t.after(() => proxy.close());
  const agent = await startAgent(dir, {
    uplink: { endpoints: [`127.0.0.1:${proxy.port}`], timeout: '1500ms', max_in_flight: 64 },
    batch: { max_delay: '50ms' },
  });
  t.after(() => agent.kill9());

  // Warm up: the agent's HTTP/2 connection is set up before the answers start disappearing.
  await pahoPublish(paho, ['--port', String(agent.mqttPort), '--device', 'ack-warmup', '--count', '1', '--qos', '1']);
  await waitFor('warm-up delivered', async () => (await agg.get('/v1/devices/ack-warmup')).status === 200);
  await waitFor(
    'warm-up acknowledged',
    async () => metricValue(await agent.metrics(), 'otlp_edge_agent_uplink_backlog_batches') === 0,
  );
  proxy.setCut(true);
  const r = await pahoPublish(paho, [
    '--port',
    String(agent.mqttPort),
    '--device',
    'ack-1',
    '--count',
    '20',
    '--qos',
    '1',
  ]);
  assert.equal(r.acked.length, 20);
  // The aggregator has the readings durably; the agent never heard so.
  await waitFor(
    'aggregator committed',
    async () => (await agg.get('/v1/devices/ack-1')).body?.counts?.received === 20,
    30_000,
  ).catch(async (e) => {
    const m = (await agent.metrics())
      .split('\n')
      .filter((l) => /uplink_batches_total|backlog_batches/.test(l) && !l.startsWith('#'));
    throw new Error(
      `${(e as Error).message}; aggregator has ${JSON.stringify((await agg.get('/v1/devices/ack-1')).body?.counts)}; agent: ${m.join(', ')}; agent log tail: ${agent.output().slice(-1500)}`,
    );
  });
  await agg.kill9();
  agg = await startAggregator(dir, {}, { grpcPort: agg.grpcPort, apiPort: agg.apiPort });
  proxy.reset();
  proxy.setCut(false);

  await waitFor(
    'agent backlog drained through the retry',
    async () => metricValue(await agent.metrics(), 'otlp_edge_agent_uplink_backlog_batches') === 0,
    30_000,
  );
  const metrics = await (await fetch(`http://127.0.0.1:${agg.apiPort}/metrics`)).text();
  assert.ok(
    metricValue(metrics, 'otlp_edge_aggregator_uplink_batches_total{outcome="duplicate"}') >= 1,
    'the retried batch was recognised',
  );
  const device = (await agg.get('/v1/devices/ack-1')).body;
  assert.deepEqual(device.counts, { received: 20, duplicates: 0, missing: 0 });
  const series = (await agg.get('/v1/devices/ack-1/series?metric=temperature&from=1732279000000&to=1732290000000'))
    .body;
  assert.equal(
    series.points.reduce((n: number, p: { count: number }) => n + p.count, 0),
    20,
    'rollups hold each reading once',
  );
});
