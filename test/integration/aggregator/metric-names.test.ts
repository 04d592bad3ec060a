import { test } from 'node:test';
import assert from 'node:assert/strict';
import { metricValue } from '../../helpers/agent-process.js';
import { startAggregator } from '../../helpers/aggregator-process.js';
import { tempDir } from '../../helpers/tmp.js';
import { sendBatch } from '../../helpers/uplink-client.js';
import { MetricsEncoder } from '../../../protocol/otlp/metrics-encoder.js';
import { AckStatus } from '../../../protocol/uplink/messages.js';

/** One reading of `count` distinct metric names starting at `from`. */
function manyNames(device: string, from: number, count: number, tsMs: number): Uint8Array {
  const names = Array.from({ length: count }, (_, i) => `sensor.${from + i}.value`);
  return new MetricsEncoder({ gatewayId: 'gw' }).encode([
    {
      deviceId: device,
      readings: [{ ts: tsMs, seq: from + 1, names, values: names.map((_, i) => i), attributes: null }],
    },
  ]);
}

test("a device sending 5,000 distinct metric names leaves the aggregator's memory bounded: 1,000 kept, the rest dropped and counted", async (t) => {
  const dir = tempDir(t);
  const agg = await startAggregator(dir);
  t.after(() => agg.kill9());
  const rss = async () =>
    metricValue(
      await (await fetch(`http://127.0.0.1:${agg.apiPort}/metrics`)).text(),
      'otlp_edge_aggregator_process_resident_memory_bytes',
    );
  const before = await rss();
  const now = Date.now() - 10_000;
  for (let b = 0; b < 5; b++) {
    const r = await sendBatch(`127.0.0.1:${agg.grpcPort}`, {
      agentId: 'gw',
      seq: b + 1,
      payload: manyNames('names-dev', b * 1000, 1000, now + b),
      points: 1001,
    });
    assert.equal(r.ack?.status, AckStatus.OK, r.err?.message ?? r.ack?.reason);
  }
  const dev = (await agg.get('/v1/devices/names-dev')).body;
  assert.equal(Object.keys(dev.latest).length, 1000, 'devices.max_metrics (default 1,000) names kept');
  assert.equal(dev.latest['sensor.999.value'].value, 999);
  assert.equal(dev.latest['sensor.1000.value'], undefined);
  const metrics = await (await fetch(`http://127.0.0.1:${agg.apiPort}/metrics`)).text();
  assert.equal(metricValue(metrics, 'otlp_edge_aggregator_points_dropped_max_metrics_total'), 4000);
  assert.match(agg.output(), /devices\.max_metrics distinct metric names/);
  const grown = (await rss()) - before;
  assert.ok(grown < 120 * 1024 * 1024, `RSS grew by ${(grown / 1048576).toFixed(0)} MiB`);
});
