import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeviceData } from '../../../../aggregator/device/types.js';
import type { DeviceStateStore } from '../../../../aggregator/state/store.js';
import { multi, openStore, T0 } from './helpers.js';

const METRICS = ['temp', 'hum', 'co2'];

/** A device's traffic over several minutes: gaps, a retried reading, out-of-order arrival, a late straggler. */
function traffic(): DeviceData[][] {
  const batches: DeviceData[][] = [];
  const seqs = [
    [0, 1, 2],
    [3, 5, 6],
    [4, 8, 9],
    [6, 7, 10],
    [11, 30, 31],
    [12, 90, 91],
    [95, 100],
    [13, 150, 160],
    [161, 200],
  ];
  for (const s of seqs) batches.push([multi('dev', s, METRICS), multi('other', s, ['x'])]);
  return batches;
}

async function snapshot(store: DeviceStateStore, id: string) {
  const view = store.get(id)!;
  const series = Object.fromEntries(
    await Promise.all(Object.keys(view.latest).map(async (m) => [m, await store.series(id, m, 0, T0 * 2)])),
  );
  return { latest: view.latest, counts: view.counts, lastSeen: view.lastSeen, series };
}

/** The traffic applied whole to `one`, and split between `a` (first five batches) and `b` (the rest). */
async function splitOverTwo(t: Parameters<typeof openStore>[0]) {
  const one = await openStore(t);
  const a = await openStore(t);
  const b = await openStore(t);
  for (const [i, batch] of traffic().entries()) {
    await one.store.apply(batch, { source: 'gw', seq: i + 1 });
    await (i < 5 ? a : b).store.apply(batch, { source: 'gw', seq: i + 1 });
  }
  return { one, a, b };
}

test('state split over two nodes merges to exactly what one node that saw everything holds', async (t) => {
  const { one, a, b } = await splitOverTwo(t);
  const exported = await a.store.exportDevice('dev');
  assert.ok(exported instanceof Uint8Array);
  await b.store.mergeDevice(exported);
  assert.deepEqual(await snapshot(b.store, 'dev'), await snapshot(one.store, 'dev'));
  await b.reopen();
  assert.deepEqual(await snapshot(b.store, 'dev'), await snapshot(one.store, 'dev'), 'the merge is durable');
  // and it goes on counting like the one node
  for (const o of [one, b]) await o.store.apply([multi('dev', [201, 199], METRICS)], null);
  assert.deepEqual(await snapshot(b.store, 'dev'), await snapshot(one.store, 'dev'));
});

test('merging the other way round (older state into the newer node) gives the same', async (t) => {
  const one = await openStore(t);
  const a = await openStore(t);
  const b = await openStore(t);
  for (const [i, batch] of traffic().entries()) {
    await one.store.apply(batch, null);
    await (i % 2 === 0 ? a : b).store.apply(batch, null); // interleaved: both hold buckets of the same minutes
  }
  await a.store.mergeDevice((await b.store.exportDevice('dev'))!);
  assert.deepEqual(await snapshot(a.store, 'dev'), await snapshot(one.store, 'dev'));
});

test('a reading both nodes applied counts once received and once duplicate', async (t) => {
  const one = await openStore(t);
  const a = await openStore(t);
  const b = await openStore(t);
  const batches = traffic();
  for (const [i, batch] of batches.entries()) {
    await one.store.apply(batch, null);
    if (i <= 4) await a.store.apply(batch, null);
    if (i >= 4) await b.store.apply(batch, null); // batch 4 reached both (a retry that went to the new owner)
  }
  await b.store.mergeDevice((await a.store.exportDevice('dev'))!);
  const want = one.store.get('dev')!.counts;
  assert.deepEqual(b.store.get('dev')!.counts, { ...want, duplicates: want.duplicates + 3 });
});

test('an export imported into an empty node reproduces the device; delete removes it for good', async (t) => {
  const a = await openStore(t);
  const c = await openStore(t);
  for (const [i, batch] of traffic().entries()) await a.store.apply(batch, { source: 'gw', seq: i + 1 });
  const before = await snapshot(a.store, 'dev');
  await c.store.mergeDevice((await a.store.exportDevice('dev'))!);
  assert.deepEqual(await snapshot(c.store, 'dev'), before);
  assert.equal(await a.store.exportDevice('nobody'), null);

  assert.equal(await a.store.deleteDevice('dev'), true);
  assert.equal(a.store.get('dev'), undefined);
  assert.deepEqual(await a.store.series('dev', 'temp', 0, T0 * 2), []);
  assert.deepEqual(
    a.store.list({ limit: 10 }).devices.map((d) => d.id),
    ['other'],
  );
  await a.reopen();
  assert.equal(a.store.get('dev'), undefined);
  assert.equal(a.store.deviceCount, 1);
  // data arriving again starts a new device with no history
  await a.store.apply([multi('dev', [500], ['temp'])], null);
  assert.deepEqual(
    (await a.store.series('dev', 'temp', 0, T0 * 2)).map((x) => x.count),
    [1],
  );
  assert.deepEqual(a.store.get('dev')!.counts, { received: 1, duplicates: 0, missing: 0 });
});

test('an export is refused when it is not one', async (t) => {
  const { store } = await openStore(t);
  await assert.rejects(
    store.mergeDevice(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])),
    /not a device state export/,
  );
});

test('an export merged twice (a handoff resent after its reply was lost) counts once, also after a restart', async (t) => {
  const { one, a, b } = await splitOverTwo(t);
  const exported = (await a.store.exportDevice('dev'))!;
  await b.store.mergeDevice(exported);
  await b.store.mergeDevice(exported);
  assert.deepEqual(await snapshot(b.store, 'dev'), await snapshot(one.store, 'dev'));
  const again = await b.reopen();
  await again.mergeDevice(exported);
  assert.deepEqual(await snapshot(again, 'dev'), await snapshot(one.store, 'dev'), 'recognised after a restart too');
  // A different export (the sender's state changed) is merged.
  await a.store.apply([multi('dev', [300], METRICS)], null);
  await one.store.apply([multi('dev', [300], METRICS)], null);
  await again.mergeDevice((await a.store.exportDevice('dev'))!);
  assert.equal(again.get('dev')!.latest.temp.ts, one.store.get('dev')!.latest.temp.ts);
});
