import { test } from 'node:test';
import assert from 'node:assert/strict';
import { data, DAY, minuteStart, MINUTE, multi, openStore, T0 } from './helpers.js';

const M = minuteStart(T0);

test('series returns the buckets overlapping [from, to), oldest first', async (t) => {
  const { store } = await openStore(t);
  // seqs 0..200: one point a second from T0 (20 s into minute M): minutes M .. M+3
  await store.apply(
    [
      data(
        'd1',
        Array.from({ length: 201 }, (_, s) => s),
      ),
    ],
    null,
  );
  const starts = async (from: number, to: number) =>
    (await store.series('d1', 'temp', from, to)).map((b) => (b.start - M) / MINUTE);
  assert.deepEqual(await starts(M, M + 10 * MINUTE), [0, 1, 2, 3]);
  assert.deepEqual(
    await starts(M + 30_000, M + 2 * MINUTE),
    [0, 1],
    'a bucket that begins before from overlaps it; to is exclusive',
  );
  assert.deepEqual(await starts(M + MINUTE, M + MINUTE + 1), [1]);
  assert.deepEqual(await starts(M + 3 * MINUTE, M + 3 * MINUTE), []);
  assert.deepEqual(await starts(0, M), []);
  assert.deepEqual(await store.series('d1', 'nope', 0, T0 * 2), []);
  assert.deepEqual(await store.series('nobody', 'temp', 0, T0 * 2), []);
  const [b0, , , b3] = await store.series('d1', 'temp', M, M + 10 * MINUTE);
  assert.deepEqual(b0, { start: M, min: 20, max: 59, sum: ((20 + 59) * 40) / 2, count: 40, last: 59 });
  assert.deepEqual(b3, {
    start: M + 3 * MINUTE,
    min: 180,
    max: 220,
    sum: ((180 + 220) * 41) / 2,
    count: 41,
    last: 220,
  });
});

test('late points for older minutes merge into their stored buckets, in memory and after a restart', async (t) => {
  const o = await openStore(t);
  await o.store.apply([data('d1', [0, 100, 200])], null); // minutes M, M+2, M+3
  await o.store.apply([data('d1', [1, 101], 'temp', () => -5)], null); // late, for M and M+2
  const expect = [
    [2, -5, 20],
    [2, -5, 120],
    [1, 220, 220],
  ];
  const view = async () => (await o.store.series('d1', 'temp', M, M + 10 * MINUTE)).map((b) => [b.count, b.min, b.max]);
  assert.deepEqual(await view(), expect);
  await o.reopen();
  assert.deepEqual(await view(), expect);
  await o.store.apply([data('d1', [2], 'temp', () => 99), data('d1', [102], 'temp', () => 1)], null);
  assert.deepEqual(await view(), [
    [3, -5, 99],
    [3, -5, 120],
    [1, 220, 220],
  ]);
  assert.equal(
    (await o.store.series('d1', 'temp', M, M + MINUTE))[0].last,
    99,
    'last is by ts: seq 2 is the newest of minute M',
  );
});

test('prune deletes buckets older than the retention, durably, heads included', async (t) => {
  const o = await openStore(t);
  await o.store.apply([data('d1', [0, 120]), data('d2', [0])], null); // d1: minutes M and M+2; d2: M only (its head)
  o.clock.now = T0 + 7 * DAY + 60_000; // minute M is now past the 7-day retention, M+2 is not
  assert.equal(await o.store.prune(), 2, "d1's stored minute M and d2's head");
  assert.deepEqual(
    (await o.store.series('d1', 'temp', T0, T0 + 300_000)).map((b) => b.count),
    [1],
  );
  assert.deepEqual(await o.store.series('d2', 'temp', T0, T0 + 300_000), []);
  assert.deepEqual(o.store.get('d2')!.latest.temp, { value: 20, ts: T0 }, 'the latest value stays');
  assert.equal(await o.store.pruneExpired(o.clock.now), 0, 'nothing left to prune');
  await o.reopen();
  assert.deepEqual(
    (await o.store.series('d1', 'temp', 0, T0 + 300_000)).map((b) => b.start),
    [M + 2 * MINUTE],
  );
  assert.deepEqual(await o.store.series('d2', 'temp', 0, T0 + 300_000), []);
  // the pruned head does not come back: new points start a fresh bucket
  await o.store.apply([data('d2', [1])], null);
  assert.deepEqual(
    (await o.store.series('d2', 'temp', 0, T0 + 300_000)).map((b) => b.count),
    [1],
  );
});

test('prune walks many series and deletes only what expired', async (t) => {
  const o = await openStore(t, { retentionMs: 30 * MINUTE });
  // 50 devices × 2 metrics, one point per minute for 60 minutes
  for (let m = 0; m < 60; m++) {
    const batch = Array.from({ length: 50 }, (_, d) => multi(`dev-${d}`, [m * 60], ['a', 'b']));
    await o.store.apply(batch, null);
  }
  o.clock.now = T0 + 60 * MINUTE; // minutes older than 30 minutes before now go
  const cutoff = minuteStart(o.clock.now - 30 * MINUTE);
  const before = (await o.store.series('dev-7', 'b', 0, T0 * 2)).length;
  const expired = (await o.store.series('dev-7', 'b', 0, cutoff)).length;
  assert.equal(expired, 30);
  assert.equal(await o.store.prune(), 100 * expired);
  const left = await o.store.series('dev-7', 'b', 0, T0 * 2);
  assert.equal(left.length, before - expired);
  assert.ok(left.every((b) => b.start >= cutoff));
});

test('series sees changes still being written: rolled heads, and late points whose bucket is still being read', async (t) => {
  const o = await openStore(t);
  await o.store.apply([data('d1', [0, 100])], null); // minute M stored, M+2 the head
  await o.reopen(); // nothing in memory but the record
  const pending = [
    o.store.apply([data('d1', [1], 'temp', () => -1)], null), // late for M: its stored value must be read first
    o.store.apply([data('d1', [200])], null), // M+3: the head M+2 rolls over
  ];
  const during = await o.store.series('d1', 'temp', 0, T0 * 2);
  assert.deepEqual(
    during.map((b) => [(b.start - M) / MINUTE, b.count, b.min]),
    [
      [0, 2, -1],
      [2, 1, 120],
      [3, 1, 220],
    ],
  );
  await Promise.all(pending);
  assert.deepEqual(await o.store.series('d1', 'temp', 0, T0 * 2), during);
  const exported = await o.store.exportDevice('d1');
  await o.reopen();
  assert.deepEqual(await o.store.series('d1', 'temp', 0, T0 * 2), during);
  assert.ok(exported !== null);
});
