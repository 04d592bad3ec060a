import { test } from 'node:test';
import assert from 'node:assert/strict';
import { metricValue } from '../../helpers/agent-process.js';
import { startAggregator } from '../../helpers/aggregator-process.js';
import { tempDir } from '../../helpers/tmp.js';
import { sendBatch } from '../../helpers/uplink-client.js';
import { MetricsEncoder } from '../../../protocol/otlp/metrics-encoder.js';
import { AckStatus } from '../../../protocol/uplink/messages.js';

test('over its memory soft limit a node answers uplink batches RETRY and OTLP requests 429 with Retry-After, and counts them', async (t) => {
  // A limit below any Node process's resident memory: the node is over its soft limit from the first check.
  const agg = await startAggregator(tempDir(t), {
    processors: [{ memory_limiter: { limit: '10MiB', spike: '1MiB', check_interval: '50ms' } }],
  });
  t.after(() => agg.kill9());
  const now = Date.now();
  const payload = new MetricsEncoder({ gatewayId: 'gw-m' }).encode([
    { deviceId: 'm-1', readings: [{ ts: now, seq: 1, names: ['t'], values: [1], attributes: null }] },
  ]);
  const r = await sendBatch(`127.0.0.1:${agg.grpcPort}`, { agentId: 'gw-m', seq: 1, payload, points: 2 });
  assert.equal(r.ack?.status, AckStatus.RETRY, r.err?.message);
  assert.match(r.ack!.reason, /memory is over its soft limit/);
  assert.ok(r.ack!.retryAfterMs > 0);

  const res = await fetch(`http://127.0.0.1:${agg.otlpHttpPort}/v1/metrics`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ resourceMetrics: [] }),
  });
  assert.equal(res.status, 429);
  assert.ok(Number(res.headers.get('retry-after')) >= 1);

  const m = await (await fetch(`http://127.0.0.1:${agg.apiPort}/metrics`)).text();
  assert.equal(metricValue(m, 'otlp_edge_aggregator_memory_limiter_state') >= 1, true);
  assert.equal(metricValue(m, 'otlp_edge_aggregator_memory_limiter_refused_total{ingest="uplink"}'), 1);
  assert.equal(metricValue(m, 'otlp_edge_aggregator_memory_limiter_refused_total{ingest="otlp"}'), 1);
  assert.equal(metricValue(m, 'otlp_edge_aggregator_memory_limiter_limit_bytes{limit="hard"}'), 10 * 1024 * 1024);
  // Nothing was taken: the device is unknown.
  assert.equal((await agg.get('/v1/devices/m-1')).status, 404);
});
