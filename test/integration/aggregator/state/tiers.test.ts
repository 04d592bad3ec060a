import { test } from 'node:test';
import assert from 'node:assert/strict';
import { data, DAY, MINUTE, openStore, T0 } from './helpers.js';

const HOUR = 60 * MINUTE;
const tiers = [
  { resolutionMin: 60, retentionMs: DAY },
  { resolutionMin: 1440, retentionMs: 30 * DAY },
];
/** One point a minute for six hours from T0: seq s at T0 + s s, value 20 + s. */
const sixHours = () =>
  data(
    'd1',
    Array.from({ length: 360 }, (_, m) => m * 60),
  );

test('expired minutes roll into hours, hours into days; every answer stays what the minutes said', async (t) => {
  const o = await openStore(t, { retentionMs: 2 * HOUR, tiers });
  await o.store.apply([sixHours()], null);
  o.clock.now = T0 + 6 * HOUR;
  const all = (res: number) => o.store.series('d1', 'temp', 0, T0 + 30 * DAY, res);
  const hoursBefore = await all(60);
  const daysBefore = await all(1440);
  assert.equal(
    hoursBefore.reduce((n, b) => n + b.count, 0),
    360,
  );
  assert.equal(daysBefore.length, 1);

  const rolled = await o.store.prune();
  assert.ok(rolled >= 239 && rolled <= 241, `${rolled} minutes rolled into hours`);
  const minutes = await all(1);
  assert.ok(minutes.length <= 121 && minutes.every((b) => b.start >= o.clock.now - 2 * HOUR - MINUTE));
  assert.deepEqual(await all(60), hoursBefore, 'hour buckets = merged minutes, whether rolled or not');
  const pick = (from: number, to: number, atLeast?: number) => o.store.resolutionFor('d1', 'temp', from, to, atLeast);
  assert.equal(await pick(T0, o.clock.now), 60, 'the hours rolled so far cannot be split into minutes');
  assert.equal(await pick(o.clock.now - 30 * MINUTE, o.clock.now), 1, 'minutes where only minutes are kept');
  assert.equal(await pick(o.clock.now - 30 * MINUTE, o.clock.now, 1440), 1440, 'a coarser one when asked');
  assert.equal(await pick(0, 20 * DAY), 60, 'at most 11,000 points: 20 days are answered in hours at least');

  // Two days on: the hours expire into a day bucket (minutes too: the last two hours go straight through).
  o.clock.now = T0 + 2 * DAY;
  await o.store.prune();
  assert.deepEqual(await all(1), []);
  assert.deepEqual(await all(60), [], 'no hours left: answers at 1h hold nothing (resolutionFor picks 1d)');
  assert.deepEqual(await all(1440), daysBefore);
  assert.equal(await pick(T0, o.clock.now), 1440);
  await o.reopen();
  assert.deepEqual(await o.store.series('d1', 'temp', 0, T0 + 30 * DAY, 1440), daysBefore, 'durable');

  // Past the daily retention nothing is left.
  o.clock.now = T0 + 32 * DAY;
  await o.store.prune();
  assert.deepEqual(await o.store.series('d1', 'temp', 0, T0 + 40 * DAY, 1440), []);
});

test('a device handed to another node takes its tier buckets along; deleting it deletes them', async (t) => {
  const a = await openStore(t, { retentionMs: 2 * HOUR, tiers });
  const b = await openStore(t, { retentionMs: 2 * HOUR, tiers });
  await a.store.apply([sixHours()], null);
  a.clock.now = b.clock.now = T0 + 6 * HOUR;
  const hours = await a.store.series('d1', 'temp', 0, T0 + DAY, 60);
  await a.store.prune();
  const exported = await a.store.exportDevice('d1');
  await b.store.mergeDevice(exported!);
  await b.store.mergeDevice(exported!); // a resent handoff merges once
  assert.deepEqual(await b.store.series('d1', 'temp', 0, T0 + DAY, 60), hours);
  assert.equal(await a.store.deleteDevice('d1'), true);
  await a.reopen();
  assert.deepEqual(await a.store.series('d1', 'temp', 0, T0 + DAY, 60), []);
  // A node keeping no hourly tier takes hour buckets into its daily one.
  const c = await openStore(t, { retentionMs: 2 * HOUR, tiers: [tiers[1]] });
  c.clock.now = b.clock.now;
  await c.store.mergeDevice(exported!);
  const day = await c.store.series('d1', 'temp', 0, T0 + DAY, 1440);
  assert.equal(
    day.reduce((n, x) => n + x.count, 0),
    360,
  );
});
