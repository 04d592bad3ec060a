import { test } from 'node:test';
import assert from 'node:assert/strict';
import { benchCluster } from '../../../simulators/bench/cluster.js';
import { table } from '../../../simulators/bench/report.js';

// Correctness only: a short run on a shared machine says nothing about speed.
test(
  'bench cluster feeds 1 node and 3 nodes, every figure finite and positive, nothing forwarded',
  { timeout: 120_000 },
  async () => {
    const report = await benchCluster({ gateways: 2, devices: 90, seconds: 1, warmupSeconds: 1, repeats: 1 });
    const text = table(report);
    assert.equal(report.bench, 'cluster');
    const row = (name: string) => {
      const r = report.rows.find((x) => x.name === name);
      assert.ok(r, `no row '${name}'\n${text}`);
      return r;
    };
    for (const name of [
      'ingest, 1 node',
      'ingest, 3 nodes (same machine)',
      'CPU per point, 3 nodes vs 1',
      'CPU per point, 3 nodes, batches unsplit',
    ]) {
      const r = row(name);
      assert.ok(Number.isFinite(r.value) && r.value > 0, `${name}: ${r.value}\n${text}`);
      if (r.baseline)
        assert.ok(
          Number.isFinite(r.baseline.value) && r.baseline.value > 0,
          `${name} baseline: ${r.baseline.value}\n${text}`,
        );
    }
    assert.deepEqual(row('CPU per point, 3 nodes vs 1').budget, { op: '<=', bound: 1.25, ratio: true });
    // Gateways split by the nodes' own ring: a forwarded point would mean the bench and the nodes disagree on owners.
    assert.equal(row('forwarded share, 3 nodes').value, 0, text);
    // Tiny batches run through the recorded set in this short run: the replay count is reported, not zero here.
    assert.ok(row('batches replayed in the windows').value >= 0, text);
  },
);
