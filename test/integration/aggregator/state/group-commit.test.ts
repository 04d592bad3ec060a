import { test } from 'node:test';
import assert from 'node:assert/strict';
import { data, openStore } from './helpers.js';

test('group commit: 200 concurrent batches take far fewer writes, and each resolves only after its write', async (t) => {
  const { store } = await openStore(t);
  const all = Array.from({ length: 200 }, (_, i) => {
    const writesAtCall = store.writes;
    return store
      .apply([data(`dev-${i % 20}`, [Math.floor(i / 20)])], { source: `gw-${i % 4}`, seq: Math.floor(i / 4) + 1 })
      .then((r) => ({ r, durableWrites: store.writes - writesAtCall }));
  });
  const results = await Promise.all(all);
  assert.ok(results.every(({ r }) => !r.duplicate && r.points === 1));
  assert.ok(
    results.every(({ durableWrites }) => durableWrites >= 1),
    'no batch was answered before a write completed after it',
  );
  assert.ok(store.writes <= 2, `${store.writes} writes for 200 batches`);
  assert.equal(store.deviceCount, 20);
  assert.deepEqual(store.get('dev-3')!.counts, { received: 10, duplicates: 0, missing: 0 });
});

test('batches arriving while a write is in flight all go into the next single write', async (t) => {
  const { store } = await openStore(t);
  // Four sources keep four batches each in flight (like agents), 400 batches in all.
  const lane = async (k: number) => {
    const source = k % 4;
    for (let i = 0; i < 25; i++) {
      const before = store.writes;
      const r = await store.apply([data(`lane-${k}`, [i])], {
        source: `gw-${source}`,
        seq: i * 4 + Math.floor(k / 4) + 1,
      });
      assert.equal(r.duplicate, false);
      assert.ok(store.writes > before, 'answered after a write that started after it');
    }
  };
  await Promise.all(Array.from({ length: 16 }, (_, k) => lane(k)));
  assert.deepEqual(store.get('lane-5')!.counts, { received: 25, duplicates: 0, missing: 0 });
  assert.ok(store.writes < 400 / 4, `${store.writes} writes for 400 batches`);
});

test('a failed write answers its callers with the error, memory returns to what is durable, and the retry applies', async (t) => {
  const o = await openStore(t);
  await o.store.apply([data('d1', [0, 1])], { source: 'gw-1', seq: 1 });
  const db = (o.store as unknown as { db: { batch(): { write(o: unknown): Promise<void> } } }).db;
  const realBatch = db.batch.bind(db);
  let failNext = true;
  db.batch = () => {
    const b = realBatch();
    if (failNext) {
      failNext = false;
      b.write = async () => {
        throw new Error('disk full');
      };
    }
    return b;
  };
  await assert.rejects(o.store.apply([data('d1', [2, 3]), data('d2', [0])], { source: 'gw-1', seq: 2 }), /disk full/);
  const retried = await o.store.apply([data('d1', [2, 3]), data('d2', [0])], { source: 'gw-1', seq: 2 });
  assert.equal(retried.duplicate, false, 'the failed batch was not marked applied');
  assert.deepEqual(o.store.get('d1')!.counts, { received: 4, duplicates: 0, missing: 0 });
  assert.equal(o.store.failures, 1);
  await o.reopen();
  assert.deepEqual(o.store.get('d1')!.counts, { received: 4, duplicates: 0, missing: 0 });
  assert.deepEqual(o.store.get('d2')!.counts, { received: 1, duplicates: 0, missing: 0 });
  assert.equal((await o.store.series('d1', 'temp', 0, Date.UTC(2100, 0)))[0].count, 4);
});

test('close waits for the writes under way; apply after close is refused', async (t) => {
  const o = await openStore(t);
  const pending = o.store.apply([data('d1', [0])], { source: 'gw-1', seq: 1 });
  await o.store.close();
  assert.equal((await pending).duplicate, false);
  await assert.rejects(o.store.apply([data('d1', [1])], null), /closed/);
  await o.reopen();
  assert.equal(o.store.get('d1')!.counts.received, 1);
});
