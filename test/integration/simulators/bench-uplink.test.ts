import { test } from 'node:test';
import assert from 'node:assert/strict';
import { benchUplink } from '../../../simulators/bench/uplink.js';
import { histogramQuantile } from '../../../simulators/bench/uplink-measures.js';
import { table } from '../../../simulators/bench/report.js';

// Correctness only: a short run on a shared machine says nothing about speed or size.
test(
  'bench uplink reports the link at field load and at a burst beside OTLP + gzip/zstd of the same readings',
  { timeout: 120_000 },
  async () => {
    const report = await benchUplink({
      devices: 60,
      seconds: 4,
      burstRate: 1000,
      burstSeconds: 2,
      outageSeconds: 3,
      warmup: 1,
      progress: () => undefined,
    });
    assert.equal(report.bench, 'uplink');
    const text = table(report);
    const row = (name: string) => {
      const r = report.rows.find((x) => x.name === name);
      assert.ok(r, `row '${name}' in\n${text}`);
      return r;
    };
    for (const load of ['field load', 'burst']) {
      const wire = row(`${load}: bytes on the wire per point`);
      assert.ok(wire.value > 0 && Number.isFinite(wire.value), text);
      assert.equal(wire.baseline?.name, 'OTLP+gzip 1,000-pt');
      assert.ok(wire.baseline!.value > 1, 'the baseline priced the readings of the window');
      const points = row(`${load}: points in the window`);
      assert.ok(points.value > 0);
      // The readings priced for the baselines are the ones the agent delivered in the window (give or take those in
      // flight at its edges).
      const priced = Number(points.note?.match(/^(\d+) priced$/)?.[1]);
      assert.ok(
        Math.abs(priced - points.value) <= Math.max(60 * 6, points.value * 0.2),
        `${priced} vs ${points.value}`,
      );
      for (const name of ['requests per second', 'points per request', 'device → aggregator latency p99', 'agent RSS'])
        assert.ok(row(`${load}: ${name}`).value > 0, `${load}: ${name} in\n${text}`);
    }
    assert.deepEqual(row('field load: device → aggregator latency p99').budget, { op: '<=', bound: 250 });
    const outage = row('outage: backlog bytes per point, packed');
    assert.ok(outage.value > 0 && outage.value < outage.baseline!.value, `packing made the backlog smaller\n${text}`);
  },
);

test('quantiles are read from the change of a Prometheus histogram between two scrapes', () => {
  const scrape = (counts: number[]) =>
    ['0.01', '0.05', '0.1', '+Inf'].map((le, i) => `delay_seconds_bucket{le="${le}"} ${counts[i]}`).join('\n');
  const before = scrape([5, 5, 5, 5]);
  // 100 new observations: 50 under 10 ms, 40 in (10, 50], 10 in (50, 100].
  const after = scrape([55, 95, 105, 105]);
  assert.equal(histogramQuantile(before, after, 'delay_seconds', 0.5), 0.01);
  assert.ok(Math.abs(histogramQuantile(before, after, 'delay_seconds', 0.7) - 0.03) < 1e-9);
  assert.ok(Math.abs(histogramQuantile(before, after, 'delay_seconds', 0.99) - 0.095) < 1e-9);
  assert.ok(Number.isNaN(histogramQuantile(before, before, 'delay_seconds', 0.5)), 'nothing observed');
});
