import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeqTracker, WINDOW } from '../../../../aggregator/state/seq-tracker.js';
import { SourceDedup } from '../../../../aggregator/state/dedup.js';
import { addPoint, mergeBucket, newBucket } from '../../../../aggregator/state/rollups.js';

const run = (seqs: number[]) => {
  const t = new SeqTracker();
  const fresh = seqs.map((s) => t.observe(s));
  return { t, fresh };
};

test('in-order seqs are all received, nothing missing', () => {
  const { t } = run([0, 1, 2, 3, 4]);
  assert.deepEqual(t.counts, { received: 5, duplicates: 0, missing: 0 });
});

test('gaps count as missing until they are filled; repeats are duplicates', () => {
  const { t, fresh } = run([0, 1, 5, 3, 3, 5, 2]);
  assert.deepEqual(fresh, [true, true, true, true, false, false, true]);
  assert.deepEqual(t.counts, { received: 5, duplicates: 2, missing: 1 }); // 4 still missing
});

test('a device restart (seq back to 0) or a 2^32 wrap starts a new epoch without counting billions missing', () => {
  const { t } = run([4_000_000_000, 4_000_000_001, 0, 1, 2]);
  assert.deepEqual(t.counts, { received: 5, duplicates: 0, missing: 0 });
  assert.equal(t.epochs, 1);
  const wrap = run([2 ** 32 - 2, 2 ** 32 - 1, 0, 1]).t;
  assert.deepEqual(wrap.counts, { received: 4, duplicates: 0, missing: 0 });
});

test('the first seq seen starts the count; a jump past the window counts its gap once', () => {
  const { t } = run([1000, 1001]);
  assert.deepEqual(t.counts, { received: 2, duplicates: 0, missing: 0 });
  const jump = run([0, WINDOW * 3]).t;
  assert.deepEqual(jump.counts, { received: 2, duplicates: 0, missing: WINDOW * 3 - 1 });
  assert.equal(jump.observe(WINDOW * 3 - 1), true, 'a filled gap within the window counts');
  assert.equal(jump.counts.missing, WINDOW * 3 - 2);
});

test('the tracker survives its encoding', () => {
  const { t } = run([0, 2, 2, 7]);
  const buf = new DataView(new ArrayBuffer(SeqTracker.BYTES + 4));
  t.write(buf, 4);
  const back = SeqTracker.read(buf, 4);
  assert.deepEqual(back.counts, t.counts);
  assert.equal(back.observe(2), false);
  assert.equal(back.observe(3), true);
});

test('batch dedup per source: floor plus the seqs above it; removal undoes a failed write', () => {
  const d = new SourceDedup();
  for (const s of [1, 2, 4, 6]) d.add(s);
  assert.equal(d.floor, 2);
  assert.deepEqual(d.above, [4, 6]);
  assert.ok(d.has(1) && d.has(4) && !d.has(3) && !d.has(5));
  d.add(3);
  assert.equal(d.floor, 4);
  const back = SourceDedup.decode(d.encode());
  assert.deepEqual([back.floor, back.above], [4, [6]]);
  back.remove(3);
  assert.ok(!back.has(3) && back.has(4) && back.has(2));
});

test('rollup buckets: min, max, sum, count and last by time, in any arrival order', () => {
  const b = newBucket();
  addPoint(b, 5, 1000);
  addPoint(b, 9, 3000);
  addPoint(b, 1, 2000); // arrives late: not the last
  assert.deepEqual([...b.subarray(0, 5)], [1, 9, 15, 3, 9]);
  const other = newBucket();
  addPoint(other, -2, 4000);
  mergeBucket(b, other);
  assert.deepEqual([...b.subarray(0, 5)], [-2, 9, 13, 4, -2]);
});
