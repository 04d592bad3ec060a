import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceStateStore } from '../../../../aggregator/state/store.js';
import type { DeviceData } from '../../../../aggregator/state/types.js';
import { tempDir } from '../../../helpers/tmp.js';

const T0 = 1732280000000;
function data(deviceId: string, seqs: number[], metric = 'temp', value = (s: number) => 20 + s): DeviceData {
  const ts = seqs.map((s) => T0 + s * 1000);
  return { deviceId, metric: seqs.map(() => metric), ts, value: seqs.map(value), seqTs: ts, seq: seqs };
}

async function open(t: Parameters<typeof tempDir>[0], dir = tempDir(t), clock = { now: T0 + 3_600_000 }) {
  const store = await DeviceStateStore.open({ dir, offlineAfterMs: 60_000, rollupRetentionMs: 7 * 86_400_000, now: () => clock.now });
  return { store, dir, clock };
}

test('latest values, counts and rollups follow what devices sent, and survive a reopen', async (t) => {
  const { store, dir, clock } = await open(t);
  await store.apply([data('d1', [0, 1, 2]), data('d2', [0])], { source: 'gw-1', seq: 1 });
  await store.apply([data('d1', [5, 4, 70])], { source: 'gw-1', seq: 2 });
  const d1 = store.get('d1')!;
  // 3 and 4 skipped, 4 filled late, then 6..69 skipped: 65 missing.
  assert.deepEqual(d1.counts, { received: 6, duplicates: 0, missing: 65 });
  assert.deepEqual(d1.latest.temp, { value: 90, ts: T0 + 70_000 }, 'latest is the newest by time');
  assert.equal(d1.online, true);
  // T0 is 20 s into its minute: seqs 0–39 fall in the first bucket, 70 in the second.
  const first = Math.floor(T0 / 60_000) * 60_000;
  assert.deepEqual(await store.series('d1', 'temp', T0, T0 + 120_000), [
    { start: first, min: 20, max: 25, sum: 20 + 21 + 22 + 25 + 24, count: 5, last: 25 },
    { start: first + 60_000, min: 90, max: 90, sum: 90, count: 1, last: 90 },
  ]);
  await store.close();
  const again = await DeviceStateStore.open({ dir, offlineAfterMs: 60_000, rollupRetentionMs: 7 * 86_400_000, now: () => clock.now });
  t.after(() => again.close());
  assert.deepEqual(again.get('d1')!.counts, { received: 6, duplicates: 0, missing: 65 });
  assert.deepEqual(again.get('d1')!.latest, d1.latest);
  assert.equal((await again.series('d1', 'temp', T0, T0 + 120_000)).reduce((n, b) => n + b.count, 0), 6);
  // a point landing in a bucket written before the reopen merges with it
  await again.apply([data('d1', [3])], { source: 'gw-1', seq: 3 });
  assert.deepEqual((await again.series('d1', 'temp', T0, T0 + 60_000)).map((b) => b.count), [6, 1]);
  assert.deepEqual(again.get('d1')!.counts, { received: 7, duplicates: 0, missing: 64 });
});

test('a retried batch (same source and seq) changes nothing, also after a restart', async (t) => {
  const { store, dir, clock } = await open(t);
  const batch = [data('d1', [0, 1, 2])];
  assert.equal((await store.apply(batch, { source: 'gw-1', seq: 7 })).duplicate, false);
  assert.equal((await store.apply(batch, { source: 'gw-1', seq: 7 })).duplicate, true);
  await store.close();
  const again = await DeviceStateStore.open({ dir, offlineAfterMs: 60_000, rollupRetentionMs: 7 * 86_400_000, now: () => clock.now });
  t.after(() => again.close());
  assert.equal((await again.apply(batch, { source: 'gw-1', seq: 7 })).duplicate, true);
  assert.deepEqual(again.get('d1')!.counts, { received: 3, duplicates: 0, missing: 0 });
  assert.equal((await again.series('d1', 'temp', T0, T0 + 60_000))[0].count, 3, 'rollups did not double');
  // the same readings in a different batch are duplicate readings, not applied twice
  await again.apply(batch, { source: 'gw-2', seq: 1 });
  assert.deepEqual(again.get('d1')!.counts, { received: 3, duplicates: 3, missing: 0 });
  assert.equal((await again.series('d1', 'temp', T0, T0 + 60_000))[0].count, 3);
});

test('group commit: 200 concurrent batches take far fewer writes, and each resolves durable', async (t) => {
  const { store } = await open(t);
  t.after(() => store.close());
  const all = Array.from({ length: 200 }, (_, i) => store.apply([data(`dev-${i % 20}`, [Math.floor(i / 20)])], { source: `gw-${i % 4}`, seq: Math.floor(i / 4) + 1 }));
  const results = await Promise.all(all);
  assert.ok(results.every((r) => !r.duplicate && r.points === 1));
  assert.ok(store.writes < 50, `${store.writes} writes for 200 batches`);
  assert.equal(store.deviceCount, 20);
  assert.deepEqual(store.get('dev-3')!.counts, { received: 10, duplicates: 0, missing: 0 });
});

test('listing pages by id with an online filter; devices go offline after the silence timeout', async (t) => {
  const { store, clock } = await open(t);
  t.after(() => store.close());
  await store.apply(['c', 'a', 'b', 'd'].map((id) => data(id, [0])), null);
  clock.now += 30_000;
  await store.apply([data('b', [1])], null);
  assert.deepEqual(store.list({ limit: 3 }), { devices: ['a', 'b', 'c'].map((id) => ({ id, online: true, lastSeen: id === 'b' ? clock.now : clock.now - 30_000 })), next: 'c' });
  assert.deepEqual(store.list({ limit: 3, cursor: 'c' }).devices.map((d) => d.id), ['d']);
  assert.equal(store.list({ limit: 3, cursor: 'c' }).next, null);
  clock.now += 40_000; // a, c, d silent for 70 s
  assert.deepEqual(store.sweepOnline().wentOffline.sort(), ['a', 'c', 'd']);
  assert.deepEqual(store.sweepOnline().wentOffline, [], 'reported once');
  assert.deepEqual(store.list({ limit: 10, online: false }).devices.map((d) => d.id), ['a', 'c', 'd']);
  assert.deepEqual(store.list({ limit: 10, online: true }).devices.map((d) => d.id), ['b']);
  assert.equal(store.onlineCount, 1);
  await store.apply([data('a', [1])], null);
  assert.deepEqual(store.sweepOnline().wentOnline, ['a']);
});

test('rollups older than the retention are pruned', async (t) => {
  const { store, clock } = await open(t);
  t.after(() => store.close());
  await store.apply([data('d1', [0, 120])], null);
  clock.now = T0 + 7 * 86_400_000 + 60_000; // the first minute is now past the 7-day retention
  assert.equal(await store.pruneExpired(clock.now), 1);
  assert.deepEqual((await store.series('d1', 'temp', T0, T0 + 300_000)).map((b) => b.count), [1]);
});
