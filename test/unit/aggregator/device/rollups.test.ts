import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addPoint,
  mergeBucket,
  minuteOf,
  newBucket,
  parseRollupKey,
  rollupKey,
  rollupPoint,
  rollupRange,
} from '../../../../aggregator/device/rollups.js';

test('a bucket keeps min, max, sum, count, and last by time whatever the arrival order', () => {
  const b = newBucket();
  addPoint(b, 5, 1000);
  addPoint(b, 9, 3000);
  addPoint(b, 1, 2000); // arrives late: not the last
  assert.deepEqual(rollupPoint(0, b), { start: 0, min: 1, max: 9, sum: 15, count: 3, last: 9 });
  addPoint(b, 7, 3000); // same ts: the later arrival wins
  assert.equal(rollupPoint(0, b).last, 7);
});

test('buckets merge in any order to the same result', () => {
  const points = [
    [3, 100],
    [-2, 400],
    [8, 200],
    [1, 300],
  ] as const;
  const all = newBucket();
  for (const [v, ts] of points) addPoint(all, v, ts);
  const a = newBucket();
  const b = newBucket();
  points.forEach(([v, ts], i) => addPoint(i % 2 ? a : b, v, ts));
  const ab = newBucket();
  mergeBucket(ab, a);
  mergeBucket(ab, b);
  const ba = newBucket();
  mergeBucket(ba, b);
  mergeBucket(ba, a);
  assert.deepEqual(ab, all);
  assert.deepEqual(ba, all);
  mergeBucket(ab, newBucket());
  assert.deepEqual(ab, all, 'an empty bucket changes nothing');
});

test('bucket keys sort by device, metric, minute, and a device or metric is one key range', () => {
  const keys = [
    rollupKey('dev-1', 'temp', 0x10),
    rollupKey('dev-1', 'temp', 0x2),
    rollupKey('dev-1', 'hum', 0x99),
    rollupKey('dev-10', 'temp', 0x1),
    rollupKey('dev-1', 'temperature', 0x1),
  ];
  assert.deepEqual([...keys].sort().map(parseRollupKey), [
    { device: 'dev-1', metric: 'hum', minute: 0x99 },
    { device: 'dev-1', metric: 'temp', minute: 0x2 },
    { device: 'dev-1', metric: 'temp', minute: 0x10 },
    { device: 'dev-1', metric: 'temperature', minute: 0x1 },
    { device: 'dev-10', metric: 'temp', minute: 0x1 },
  ]);
  const inRange = (r: { gte: string; lt: string }) => keys.filter((k) => k >= r.gte && k < r.lt).length;
  assert.equal(inRange(rollupRange('dev-1')), 4);
  assert.equal(inRange(rollupRange('dev-1', 'temp')), 2);
  assert.equal(inRange(rollupRange('dev-10')), 1);
});

test('minutes are floor(ts / 60 s), so a bucket boundary is exact', () => {
  assert.equal(minuteOf(59_999.9), 0);
  assert.equal(minuteOf(60_000), 1);
  assert.equal(minuteOf(1732280000123), 28871333);
});
