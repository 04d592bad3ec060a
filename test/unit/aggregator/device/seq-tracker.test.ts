import { mulberry32 as rng } from '../../../helpers/random.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_FORWARD_GAP, SeqTracker, WINDOW } from '../../../../aggregator/device/seq-tracker.js';

const run = (seqs: number[], t = new SeqTracker()) => {
  const fresh = seqs.map((s) => t.observe(s));
  return { t, fresh };
};

test('in-order seqs are all received, nothing missing', () => {
  assert.deepEqual(run([0, 1, 2, 3, 4]).t.counts, { received: 5, duplicates: 0, missing: 0 });
});

test('gaps count as missing until filled; repeats are duplicates and reported as not new', () => {
  const { t, fresh } = run([0, 1, 5, 3, 3, 5, 2]);
  assert.deepEqual(fresh, [true, true, true, true, false, false, true]);
  assert.deepEqual(t.counts, { received: 5, duplicates: 2, missing: 1 }); // 4 still missing
  t.observe(4);
  assert.deepEqual(t.counts, { received: 6, duplicates: 2, missing: 0 });
});

test('a reset to 0 after a high seq starts a new epoch and counts no billions missing', () => {
  const { t } = run([4_000_000_000, 4_000_000_001, 0, 1, 2, 2]);
  assert.deepEqual(t.counts, { received: 5, duplicates: 1, missing: 0 });
  assert.equal(t.epochs, 1);
  t.observe(5);
  assert.equal(t.counts.missing, 2, 'the new epoch counts its own gaps');
});

test('a 2^32 wrap starts a new epoch, and a straggler of the old epoch does not count 4 billion missing', () => {
  const { t } = run([2 ** 32 - 2, 2 ** 32 - 1, 0, 1]);
  assert.deepEqual(t.counts, { received: 4, duplicates: 0, missing: 0 });
  t.observe(2 ** 32 - 3); // late, from before the wrap: a forward jump past MAX_FORWARD_GAP
  t.observe(2);
  assert.deepEqual(t.counts, { received: 6, duplicates: 0, missing: 0 });
});

test('the first seq seen mid-stream starts the count; an earlier one arriving late opens the gap between', () => {
  const { t } = run([1000, 1001]);
  assert.deepEqual(t.counts, { received: 2, duplicates: 0, missing: 0 });
  t.observe(997);
  assert.deepEqual(t.counts, { received: 3, duplicates: 0, missing: 2 }, '998 and 999 are now gaps');
  t.observe(999);
  t.observe(997);
  assert.deepEqual(t.counts, { received: 4, duplicates: 1, missing: 1 });
});

test('a jump forward counts its gap once, also past the window; gaps that leave the window stay missing', () => {
  const t = run([0, WINDOW * 3]).t;
  assert.deepEqual(t.counts, { received: 2, duplicates: 0, missing: WINDOW * 3 - 1 });
  assert.equal(t.observe(WINDOW * 3 - 1), true, 'a filled gap within the window counts');
  assert.equal(t.counts.missing, WINDOW * 3 - 2);
  // seq 1 is more than WINDOW behind: taken as a restart (received, nothing more counted missing)
  t.observe(1);
  assert.deepEqual(t.counts, { received: 4, duplicates: 0, missing: WINDOW * 3 - 2 });
  assert.equal(t.epochs, 1);
});

test('a jump forward of MAX_FORWARD_GAP or more is a new epoch, not that many missing', () => {
  const t = run([5, 5 + MAX_FORWARD_GAP + 1, 5 + MAX_FORWARD_GAP + 2]).t;
  assert.deepEqual(t.counts, { received: 3, duplicates: 0, missing: 0 });
  const below = run([5, 5 + MAX_FORWARD_GAP]).t;
  assert.equal(below.counts.missing, MAX_FORWARD_GAP - 1, 'one less is still a gap');
});

test('the tracker survives its encoding, with the bitmap left out when the window has no holes', () => {
  for (const seqs of [
    [],
    [7],
    [0, 1, 2, 3],
    [0, 2, 2, 7],
    Array.from({ length: 3000 }, (_, i) => i),
    [0, 5000, 4990],
  ]) {
    const { t } = run(seqs);
    const size = t.encodedSize();
    const view = new DataView(new ArrayBuffer(size + 8));
    assert.equal(t.write(view, 4), 4 + size);
    const back = new SeqTracker();
    assert.equal(back.read(view, 4), 4 + size);
    assert.deepEqual(back.counts, t.counts);
    assert.deepEqual([back.started, back.low, back.high], [t.started, t.low, t.high]);
    assert.deepEqual(back.bits, t.bits, `bits after ${seqs.length} seqs`);
  }
  assert.equal(run([0, 1, 2]).t.encodedSize(), 41, 'no holes: no bitmap');
  assert.equal(run([0, 2]).t.encodedSize(), 41 + WINDOW / 8);
});

test('two trackers that each saw part of a stream merge to the counts of one that saw it all', () => {
  const random = rng(42);
  for (let trial = 0; trial < 200; trial++) {
    // A stream with losses (never sent), retries (sent twice) and reordering, split at a random point; some
    // readings are sent to both sides (a retry that reached both nodes).
    const stream: number[] = [];
    const start = Math.floor(random() * 50);
    for (let s = start; s < start + 300; s++) {
      if (random() < 0.1) continue;
      stream.push(s);
      if (random() < 0.05) stream.push(s);
    }
    for (let i = 0; i < stream.length - 1; i++)
      if (random() < 0.1) [stream[i], stream[i + 1]] = [stream[i + 1], stream[i]];
    const cut = Math.floor(random() * stream.length);
    const both = new Set(Array.from({ length: 3 }, () => Math.floor(random() * stream.length)));
    const a = new SeqTracker();
    const b = new SeqTracker();
    const one = new SeqTracker();
    stream.forEach((s, i) => {
      one.observe(s);
      if (i < cut || both.has(i)) a.observe(s);
      if (i >= cut || both.has(i)) b.observe(s);
    });
    // One store would have counted each reading sent to both nodes once more, as a duplicate.
    const merged = new SeqTracker();
    merged.merge(a, true);
    merged.merge(b, true);
    const bothCount = [...both].length;
    assert.equal(merged.counts.received, one.counts.received, `trial ${trial}: received`);
    assert.equal(merged.counts.missing, one.counts.missing, `trial ${trial}: missing`);
    assert.equal(merged.counts.duplicates, one.counts.duplicates + bothCount, `trial ${trial}: duplicates`);
    // and it goes on like the one tracker
    for (const s of [start + 299, start + 305, start + 301]) assert.equal(merged.observe(s), one.observe(s));
    assert.deepEqual({ ...merged.counts, duplicates: merged.counts.duplicates - bothCount }, one.counts);
  }
});

test('a device that moved between nodes: the old node saw the first readings, the new one the rest', () => {
  const old = run(Array.from({ length: 5000 }, (_, i) => i).filter((s) => s !== 100 && s !== 4990)).t;
  const moved = run([5001, 4990, ...Array.from({ length: 500 }, (_, i) => 5002 + i)]).t;
  const one = run([
    ...Array.from({ length: 5000 }, (_, i) => i).filter((s) => s !== 100 && s !== 4990),
    5001,
    4990,
    ...Array.from({ length: 500 }, (_, i) => 5002 + i),
  ]).t;
  // The new node took 4990 as a late early reading (4991–5000 its gaps); the old node counted 4990 missing. Both
  // windows still hold those seqs, so the merge settles them: only 100 and 5000 are missing.
  old.merge(moved, true);
  assert.deepEqual(old.counts, one.counts);
  assert.deepEqual(one.counts, { received: 5500, duplicates: 0, missing: 2 });
});

test('epochs too far apart do not merge: counts add, the side heard from last continues', () => {
  const a = run([10, 11, 12]).t;
  const b = run([MAX_FORWARD_GAP * 4, MAX_FORWARD_GAP * 4 + 1]).t;
  a.merge(b, false);
  assert.deepEqual(a.counts, { received: 5, duplicates: 0, missing: 0 });
  assert.equal(a.high, 12);
  assert.equal(a.observe(12), false);
});
