import { test } from 'node:test';
import assert from 'node:assert/strict';
import { metricValue } from '../../helpers/agent-process.js';
import { startAggregator, type AggregatorProcess } from '../../helpers/aggregator-process.js';
import { OtlpHttpSink, pointsByMetric } from '../../helpers/otlp-sink.js';
import { waitFor } from '../../helpers/ports.js';
import { tempDir } from '../../helpers/tmp.js';
import { sendBatch } from '../../helpers/uplink-client.js';
import { MetricsEncoder } from '../../../protocol/otlp/metrics-encoder.js';
import { AckStatus } from '../../../protocol/uplink/messages.js';

const enc = new MetricsEncoder({ gatewayId: 'gw-x' });

/** Uplink batch `seq` of `device`: `n` readings of one metric whose values are seq * 10,000 + i. */
function batch(device: string, seq: number, n: number, spread = 0): Uint8Array {
  const now = Date.now();
  return enc.encode([
    {
      deviceId: device,
      readings: Array.from({ length: n }, (_, i) => ({
        ts: now - n + i,
        seq: (seq - 1) * n + i + 1,
        names: ['v'],
        values: [seq * 10_000 + i + (spread ? Math.random() * spread : 0)],
        attributes: null,
      })),
    },
  ]);
}

async function send(agg: AggregatorProcess, device: string, seq: number, n: number, spread = 0): Promise<void> {
  const r = await sendBatch(`127.0.0.1:${agg.grpcPort}`, {
    agentId: 'gw-x',
    seq,
    payload: batch(device, seq, n, spread),
    points: 2 * n,
  });
  assert.equal(r.ack?.status, AckStatus.OK, r.err?.message ?? r.ack?.reason);
}

const metrics = async (agg: AggregatorProcess) => (await fetch(`http://127.0.0.1:${agg.apiPort}/metrics`)).text();

test('kill -9 of an exporting node with its backend down, then back: every acknowledged point reaches the backend, duplicates only', async (t) => {
  const dir = tempDir(t);
  const sink = new OtlpHttpSink();
  await sink.start();
  t.after(() => sink.stop());
  let up = false;
  sink.answer = () => (up ? 200 : 503);
  const cfg = { export: { endpoint: `http://127.0.0.1:${sink.port}`, batch: { max_delay: '20ms' } } };
  let agg = await startAggregator(dir, cfg);
  t.after(() => agg.kill9());
  const BATCHES = 30;
  const N = 50;
  for (let seq = 1; seq <= BATCHES; seq++) {
    await send(agg, 'exp-1', seq, N);
    if (seq === 10) {
      up = true; // some requests get through before the crash, others are in flight
      await new Promise((r) => setTimeout(r, 30));
    }
    if (seq === 12 || seq === 20) {
      await agg.kill9();
      if (seq === 12) up = false;
      agg = await startAggregator(dir, cfg, { grpcPort: agg.grpcPort, apiPort: agg.apiPort });
    }
  }
  up = true;
  const want = new Set(Array.from({ length: BATCHES * N }, (_, k) => Math.floor(k / N + 1) * 10_000 + (k % N)));
  const got = await waitFor(
    'every acked point at the backend',
    () => {
      const values = pointsByMetric(sink.of('metrics')).get('exp-1/v') ?? [];
      const seen = new Set(values);
      return [...want].every((v) => seen.has(v)) ? values : null;
    },
    30_000,
  );
  assert.ok(
    got.every((v) => want.has(v)),
    'nothing the devices did not send',
  );
  const m = await metrics(agg);
  assert.equal(
    metricValue(m, 'otlp_edge_aggregator_export_dropped_points_total{exporter="otlp_http",reason="queue_full"}'),
    0,
  );
  assert.equal(
    metricValue(m, 'otlp_edge_aggregator_export_dropped_points_total{exporter="otlp_http",reason="rejected"}'),
    0,
  );
  t.diagnostic(`${got.length - want.size} duplicate points of ${want.size} after two kill -9`);
});

test('a backend down past the queue cap: the oldest requests are dropped and counted exactly, across a restart; the rest arrives', async (t) => {
  const dir = tempDir(t);
  const sink = new OtlpHttpSink();
  await sink.start();
  t.after(() => sink.stop());
  let up = false;
  sink.answer = () => (up ? 200 : 503);
  const cfg = {
    export: { endpoint: `http://127.0.0.1:${sink.port}`, batch: { max_delay: '20ms' }, queue: { max_bytes: '1MiB' } },
  };
  let agg = await startAggregator(dir, cfg);
  t.after(() => agg.kill9());
  const BATCHES = 120;
  const N = 1000;
  for (let seq = 1; seq <= BATCHES; seq++) await send(agg, 'cap-1', seq, N, 1); // ~12.5 KB a batch stored: the cap holds ~83
  const total = BATCHES * N * 2; // each reading: its value and its seq gauge
  let m = await metrics(agg);
  const dropped = metricValue(
    m,
    'otlp_edge_aggregator_export_dropped_points_total{exporter="otlp_http",reason="queue_full"}',
  );
  const queued = metricValue(m, 'otlp_edge_aggregator_export_queue_points{exporter="otlp_http"}');
  assert.ok(dropped > 0, 'the cap was passed');
  assert.equal(dropped + queued, total, 'every point is queued or counted as dropped');
  assert.ok(metricValue(m, 'otlp_edge_aggregator_export_queue_bytes{exporter="otlp_http"}') <= 1 << 20);
  await agg.kill9();
  agg = await startAggregator(dir, cfg, { grpcPort: agg.grpcPort, apiPort: agg.apiPort });
  m = await metrics(agg);
  assert.equal(
    metricValue(m, 'otlp_edge_aggregator_export_dropped_points_total{exporter="otlp_http",reason="queue_full"}'),
    dropped,
    'the drop count survives a restart',
  );
  up = true;
  await waitFor(
    'the queue drained',
    async () => metricValue(await metrics(agg), 'otlp_edge_aggregator_export_queue_points{exporter="otlp_http"}') === 0,
    30_000,
  );
  const values = pointsByMetric(sink.of('metrics'));
  const delivered = (values.get('cap-1/v')?.length ?? 0) + (values.get('cap-1/otlp_edge.device.seq')?.length ?? 0);
  assert.equal(delivered, queued, 'what was queued arrives, exactly once (no crash while sending)');
  assert.equal(delivered + dropped, total);
  const seqs = values.get('cap-1/otlp_edge.device.seq')!;
  assert.equal(
    seqs.reduce((a, b) => Math.max(a, b), 0),
    BATCHES * N,
    'the newest kept, the oldest dropped',
  );
});
