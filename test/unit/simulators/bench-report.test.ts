import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judge, markdown, meets, newReport, table, type BenchRow } from '../../../simulators/bench/report.js';

const row = (r: Partial<BenchRow>): BenchRow => ({ name: 'figure', value: 1, unit: 'x', ...r });

test('a budget bounds the value, or with ratio the value over its baseline', () => {
  assert.equal(meets(row({ value: 50_000 }), { op: '>=', bound: 50_000 }), true);
  assert.equal(meets(row({ value: 49_999 }), { op: '>=', bound: 50_000 }), false);
  assert.equal(meets(row({ value: 251 }), { op: '<=', bound: 250 }), false);
  const vsGzip = row({ value: 3, baseline: { name: 'OTLP+gzip', value: 4 } });
  assert.equal(meets(vsGzip, { op: '<=', bound: 0.75, ratio: true }), true);
  assert.equal(meets(vsGzip, { op: '<=', bound: 0.7, ratio: true }), false);
  // A ratio shown as 0.75x keeps a 0.75x budget (two decimals, as printed).
  assert.equal(
    meets(row({ value: 0.7549, baseline: { name: 'b', value: 1 } }), { op: '<=', bound: 0.75, ratio: true }),
    true,
  );
  assert.equal(meets(row({}), { op: '<=', bound: 2, ratio: true }), null, 'no baseline: no verdict');
  assert.equal(meets(row({ value: NaN }), { op: '<=', bound: 2 }), false, 'a figure that is not a number fails');
});

test('judge marks each row and the table, Markdown and summary show the verdicts', () => {
  const report = newReport('t');
  report.rows.push(
    row({ name: 'ingest', value: 60_000, budget: { op: '>=', bound: 50_000 }, goal: { op: '>=', bound: 100_000 } }),
    row({ name: 'latency p99', value: 300, budget: { op: '<=', bound: 250 }, goal: { op: '<=', bound: 100 } }),
    row({ name: 'info', value: 3 }),
  );
  const failed = judge(report);
  assert.deepEqual(
    failed.map((r) => r.name),
    ['latency p99'],
  );
  assert.equal(report.rows[0].pass, true);
  assert.equal(report.rows[0].goalMet, false);
  assert.equal(report.rows[2].pass, undefined);
  const text = table(report);
  assert.match(text, /ingest\s+60,000.*>= 50,000\s+>= 100,000\s+pass/);
  assert.match(text, /latency p99.*<= 250\s+<= 100\s+FAIL/);
  assert.match(text, /1 of 2 budgets kept, 0 of 2 goals met; missed: latency p99/);
  assert.match(markdown(report), /\| latency p99 \| 300\.0 x \|.*\| <= 250 \| <= 100 \| \*\*FAIL\*\* \|/);
});
