import { test } from 'node:test';
import assert from 'node:assert/strict';
import { benchStateApply } from '../../../../aggregator/state/bench.js';

test('the state benchmark runs and reports points/s for both batch shapes', async () => {
  const rows = await benchStateApply({ seconds: 0.3, devicesPerSource: 400 });
  const rates = rows.filter((r) => r.unit === 'points/s');
  assert.equal(rates.length, 2);
  assert.ok(
    rates.every((r) => r.value > 0),
    JSON.stringify(rows),
  );
});
