import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_SPAN, RESTART_DISTANCE, SourceDedup } from '../../../../aggregator/device/dedup.js';
import { markApplied } from '../../../../aggregator/state/batch-marks.js';

const applied = (d: SourceDedup, seqs: number[]) => seqs.filter((s) => d.has(s));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const roundTrip = (d: SourceDedup) => {
  const view = new DataView(new ArrayBuffer(d.encodedSize()));
  assert.equal(d.encode(view, 0), d.encodedSize());
  return SourceDedup.decode(new Uint8Array(view.buffer));
};

test('batches applied out of order are remembered; the floor moves over the holes as they fill', () => {
  const d = new SourceDedup();
  for (const s of [1, 2, 4, 6, 7, 9]) d.add(s);
  assert.equal(d.floor, 2);
  assert.deepEqual(applied(d, range(1, 10)), [1, 2, 4, 6, 7, 9]);
  d.add(5);
  d.add(3);
  assert.equal(d.floor, 7);
  d.add(8);
  assert.equal(d.floor, 9);
  assert.deepEqual(applied(d, range(1, 12)), range(1, 9));
  assert.equal(d.highest, 9);
});

test('the record survives its encoding, including a bitmap that starts mid-byte and seqs past 2^32', () => {
  const d = new SourceDedup();
  for (const s of [1, 2, 3, 10, 12, 13, 40, 41, 300]) d.add(s);
  const back = roundTrip(d);
  assert.deepEqual(applied(back, range(1, 310)), applied(d, range(1, 310)));
  assert.equal(back.highest, 300);
  const empty = roundTrip(new SourceDedup());
  assert.equal(empty.floor, 0);
  assert.equal(empty.has(1), false);

  const big = new SourceDedup();
  const high = 2 ** 40;
  big.raise(high);
  for (const s of [high + 1, high + 3, high + 70]) big.add(s);
  const bigBack = roundTrip(big);
  assert.deepEqual(applied(bigBack, range(high - 2, high + 80)), [high - 2, high - 1, high + 1, high + 3, high + 70]);
});

test('format 1 records (floor + ranges) from an earlier version are read', () => {
  // [1 format][8 floor][4 n ranges] then n × ([8 start][8 end]): floor 5, ranges 7–8 and 12–12.
  const view = new DataView(new ArrayBuffer(13 + 32));
  view.setUint8(0, 1);
  view.setFloat64(1, 5, true);
  view.setUint32(9, 2, true);
  [7, 8, 12, 12].forEach((v, i) => view.setFloat64(13 + 8 * i, v, true));
  const d = SourceDedup.decode(new Uint8Array(view.buffer));
  assert.deepEqual(applied(d, range(1, 14)), [1, 2, 3, 4, 5, 7, 8, 12]);
});

test('a node that sees every third seq of an agent (ring-aware routing) keeps a record of a few bytes when the agent sends its low-water mark', () => {
  const d = new SourceDedup();
  let largest = 0;
  for (let s = 3; s <= 30_000; s += 3) {
    d.raise(s - 8); // the agent has 4 batches in flight and acked everything below
    assert.equal(d.has(s), false);
    d.add(s);
    largest = Math.max(largest, d.encodedSize());
  }
  assert.ok(largest <= 33 + 4, `record grew to ${largest} bytes`);
  assert.ok(d.has(30_000) && d.has(29_997) && !d.has(29_999) && !d.has(29_998));
});

test('a batch from an old backlog is never taken for a duplicate while the agent still holds it (no loss after a ring change)', () => {
  // Batches 100–199 were for a node that died; their devices now belong here. Meanwhile this node applied every
  // third seq of 50,000 newer ones. The agent's low-water mark stays at 100 until the backlog is acknowledged.
  const d = new SourceDedup();
  for (let s = 201; s <= 50_200; s += 3) {
    d.raise(100);
    d.add(s);
  }
  assert.equal(d.floor, 99);
  assert.deepEqual(applied(d, range(100, 199)), [], 'every backlog batch is still new here');
  for (const s of range(100, 199)) d.add(s);
  assert.deepEqual(applied(d, range(100, 199)), range(100, 199), 'and a retry of any of them is a duplicate');
  assert.ok(d.encodedSize() < 33 + 50_200 / 8 + 2, 'a bit per seq of the backlog span');
  const back = roundTrip(d);
  assert.deepEqual(applied(back, range(90, 400)), applied(d, range(90, 400)));
});

test('the bitmap spans at most MAX_SPAN seqs: a newer seq lifts the floor', () => {
  const d = new SourceDedup();
  d.add(2);
  d.add(MAX_SPAN + 10);
  assert.ok(d.floor >= 10, `floor ${d.floor}`);
  assert.ok(d.has(5), 'the trade-off: a hole that far behind reads as applied');
  assert.ok(!d.has(MAX_SPAN + 9));
  assert.ok(d.encodedSize() <= 33 + MAX_SPAN / 8 + 1);
});

test('an agent that numbers from 1 again (lost its buffer) is not taken for endless duplicates', () => {
  const d = new SourceDedup();
  for (let s = 1; s <= RESTART_DISTANCE + 50; s++) d.add(s);
  assert.ok(d.has(100), 'a seq within reach of a retry is a duplicate');
  assert.equal(d.has(1), false, 'a seq far below the floor is a new numbering');
  d.add(1);
  assert.equal(d.floor, 1);
  assert.ok(d.has(1) && !d.has(2) && !d.has(100));
  d.add(3);
  assert.deepEqual(applied(d, range(1, 5)), [1, 3]);
});

test('part marks: devices of a split batch, kept across a round trip, dropped by the whole batch and by the floor', () => {
  const d = new SourceDedup();
  d.addPart(5, [111, 222]);
  d.addPart(5, [333]);
  assert.deepEqual(d.partDevices(5), [111, 222, 333]);
  assert.ok(!d.has(5), 'a part does not make the whole batch applied');
  assert.deepEqual(roundTrip(d).partDevices(5), [111, 222, 333]);
  d.addPart(6, [1]);
  d.add(6);
  assert.equal(d.partDevices(6), undefined, 'the whole batch needs no part marks');
  d.raise(6); // the agent acknowledged everything below 6: batch 5 is never sent again
  assert.equal(d.partDevices(5), undefined);
  assert.equal(d.encodedSize(), roundTrip(d).encodedSize());
  assert.ok(d.encodedSize() <= 33 + 2, 'parts below the floor are dropped from the record');
});

test('markApplied: a part applies only devices not applied before; the whole batch after parts leaves those out', () => {
  const sources = new Map<string, SourceDedup>();
  const id = { source: 'gw-1', seq: 9 };
  const mark = (part: boolean, ids: string[]) =>
    markApplied(sources, part ? { ...id, part: 1 } : id, undefined, () => ids);
  assert.deepEqual(mark(true, ['a', 'b'])?.skip, null, 'the first part: everything new');
  assert.equal(mark(true, ['b', 'a']), null, 'the same devices again (any order): a duplicate');
  assert.deepEqual([...(mark(true, ['b', 'c'])?.skip ?? [])], ['b'], 'split another way: only c is new');
  assert.deepEqual([...(mark(false, ['a', 'b', 'c', 'd'])?.skip ?? [])].sort(), ['a', 'b', 'c'], 'the whole: d only');
  assert.equal(mark(false, ['a', 'b', 'c', 'd']), null, 'then the whole batch is a duplicate');
  assert.equal(mark(true, ['d']), null, 'and so is any part of it');
  assert.deepEqual(
    markApplied(sources, { source: 'gw-1', seq: 10 }, undefined, () => assert.fail('not hashed'))?.skip,
    null,
  );
  const empty = () => markApplied(sources, { source: 'gw-1', seq: 11, part: 1 }, undefined, () => []);
  assert.deepEqual(empty()?.skip, null, 'a part without devices (resources with no device id) is applied once');
  assert.equal(empty(), null);
});

test('a batch from a new agent buffer (wiped data directory, same agent id) starts the record over: nothing of it is a duplicate', () => {
  const d = new SourceDedup();
  assert.equal(d.useBuffer(77), true, 'the first id is recorded');
  for (let s = 1; s <= 500; s++) d.add(s);
  assert.equal(d.useBuffer(77), false);
  assert.ok(d.has(1) && d.has(500));
  assert.equal(d.useBuffer(91), true, 'a new buffer numbers from 1 again');
  assert.deepEqual(applied(d, range(1, 500)), [], 'well within RESTART_DISTANCE, yet nothing is taken for applied');
  d.add(1);
  const back = roundTrip(d);
  assert.equal(back.bufferId, 91);
  assert.ok(back.has(1) && !back.has(2));
  assert.equal(back.useBuffer(0), false, 'a sender that gives no id changes nothing');
  // A record from before buffer ids (0) adopts the first id without forgetting what it holds.
  const old = new SourceDedup();
  old.add(1);
  old.useBuffer(5);
  assert.ok(old.has(1));
});
