import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceStateStore } from '../../../../aggregator/state/store.js';
import { ExportQueue, ExportQueues } from '../../../../aggregator/export/queue.js';
import { RollupExport } from '../../../../aggregator/export/rollup.js';
import { Signal } from '../../../../protocol/otlp/signal.js';
import { decodeOfficial } from '../../../helpers/otlp-sink.js';
import { tempDir } from '../../../helpers/tmp.js';

const MIN = 60_000;

test('rollup export: a minute is queued, as a summary and a last value, in the write that closes it; a quiet device by the sweep; each once', async (t) => {
  const dir = tempDir(t);
  const q = new ExportQueue('r', 'rollup', 1 << 30, new Set([Signal.METRICS]), () => undefined);
  const queues = new ExportQueues([q]);
  const store = await DeviceStateStore.open({
    dir,
    offlineAfterMs: 60_000,
    rollupRetentionMs: 86_400_000,
    exports: queues,
    rollups: new RollupExport(queues),
  });
  t.after(() => store.close());
  const m0 = 29_000_000; // a minute number (about 2025)
  const data = (ts: number[], values: number[]) => [
    { deviceId: 'r1', metric: ts.map(() => 'temp'), ts, value: values, seqTs: [], seq: [] },
  ];
  await store.apply(data([m0 * MIN + 1000, m0 * MIN + 2000, m0 * MIN + 3000], [1, 3, 2]), { source: 'gw', seq: 1 });
  assert.equal(q.length, 0, 'the minute is still open');
  await store.apply(data([(m0 + 1) * MIN + 500], [10]), { source: 'gw', seq: 2 });
  assert.equal(q.length, 1, 'queued with the point that closed it');
  const entries = q.take(100, 1 << 20);
  const [req] = await store.exports.requests(q, entries);
  const rm = decodeOfficial('metrics', req!).resourceMetrics;
  assert.equal(rm[0].resource.attributes[0].value.stringValue, 'r1');
  const [summary, last] = rm[0].scopeMetrics[0].metrics;
  assert.equal(summary.name, 'temp');
  const p = summary.summary.dataPoints[0];
  assert.deepEqual(
    [p.count, p.sum, p.startTimeUnixNano, p.timeUnixNano],
    ['3', 6, `${BigInt(m0 * MIN) * 1_000_000n}`, `${BigInt((m0 + 1) * MIN) * 1_000_000n}`],
  );
  assert.deepEqual(
    p.quantileValues.map((x: any) => [x.quantile ?? 0, x.value]),
    [
      [0, 1],
      [1, 3],
    ],
  );
  assert.equal(last.name, 'temp.last');
  assert.equal(last.gauge.dataPoints[0].asDouble, 2, 'the value with the newest ts');
  await store.exports.change((g) => q.settle(g, entries, false));

  // The device goes quiet: its last minute is exported by the sweep once it ended a minute ago, and only once.
  assert.equal(await store.exports.sweepRollups((m0 + 2) * MIN), 0, 'not before the grace');
  assert.equal(await store.exports.sweepRollups((m0 + 3) * MIN), 1);
  assert.equal(await store.exports.sweepRollups((m0 + 4) * MIN), 0, 'once');
  const [req2] = await store.exports.requests(q, q.take(100, 1 << 20));
  const p2 = decodeOfficial('metrics', req2!).resourceMetrics[0].scopeMetrics[0].metrics[0].summary.dataPoints[0];
  assert.deepEqual([p2.count, p2.sum], ['1', 10]);
});
