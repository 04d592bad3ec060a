import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_RANGES, RESTART_DISTANCE, SourceDedup } from '../../../../aggregator/state/dedup.js';

const applied = (d: SourceDedup, seqs: number[]) => seqs.filter((s) => d.has(s));
const roundTrip = (d: SourceDedup) => {
  const view = new DataView(new ArrayBuffer(d.encodedSize()));
  assert.equal(d.encode(view, 0), d.encodedSize());
  return SourceDedup.decode(new Uint8Array(view.buffer));
};

test('batches applied out of order are remembered as a floor plus ranges that fold into it', () => {
  const d = new SourceDedup();
  for (const s of [1, 2, 4, 6, 7, 9]) d.add(s);
  assert.equal(d.floor, 2);
  assert.deepEqual(d.ranges, [4, 4, 6, 7, 9, 9]);
  assert.deepEqual(applied(d, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), [1, 2, 4, 6, 7, 9]);
  d.add(5); // joins 4 and 6–7
  assert.deepEqual(d.ranges, [4, 7, 9, 9]);
  d.add(3); // joins the floor and 4–7
  assert.equal(d.floor, 7);
  assert.deepEqual(d.ranges, [9, 9]);
  d.add(8);
  assert.deepEqual([d.floor, d.ranges], [9, []]);
});

test('the record survives its encoding', () => {
  const d = new SourceDedup();
  for (const s of [1, 2, 3, 10, 12, 13, 40]) d.add(s);
  const back = roundTrip(d);
  assert.deepEqual([back.floor, back.ranges], [d.floor, d.ranges]);
  assert.deepEqual([roundTrip(new SourceDedup()).floor, roundTrip(new SourceDedup()).ranges], [0, []]);
});

test('holes that never fill are bounded: past MAX_RANGES ranges the floor moves over the oldest', () => {
  const d = new SourceDedup();
  for (let s = 2; s <= 2 * (MAX_RANGES + 10); s += 2) d.add(s); // every odd seq went to another node
  assert.equal(d.ranges.length, 2 * MAX_RANGES);
  assert.equal(d.floor, 20, 'the ten oldest ranges folded into the floor');
  assert.ok(d.has(19), 'the trade-off: a hole below the floor reads as applied');
  assert.ok(!d.has(21));
  assert.ok(d.encodedSize() <= 13 + 16 * MAX_RANGES);
});

test('an agent that numbers from 1 again (lost its buffer) is not taken for endless duplicates', () => {
  const d = new SourceDedup();
  for (let s = 1; s <= RESTART_DISTANCE + 50; s++) d.add(s);
  assert.ok(d.has(100), 'a seq within reach of a retry is a duplicate');
  assert.equal(d.has(1), false, 'a seq far below everything applied is a new numbering');
  d.add(1);
  assert.deepEqual([d.floor, d.ranges], [1, []]);
  assert.ok(d.has(1) && !d.has(2));
  d.add(3);
  assert.deepEqual(d.ranges, [3, 3]);
});
