import { test } from 'node:test';
import assert from 'node:assert/strict';
import { data, minuteStart, multi, openStore, T0 } from './helpers.js';

test('latest values, counts and rollups follow what devices sent, and survive a reopen', async (t) => {
  const o = await openStore(t);
  await o.store.apply([data('d1', [0, 1, 2]), data('d2', [0])], { source: 'gw-1', seq: 1 });
  await o.store.apply([data('d1', [5, 4, 70])], { source: 'gw-1', seq: 2 });
  const d1 = o.store.get('d1')!;
  // 3 and 4 skipped, 4 filled late, then 6..69 skipped: 65 missing.
  assert.deepEqual(d1.counts, { received: 6, duplicates: 0, missing: 65 });
  assert.deepEqual(d1.latest.temp, { value: 90, ts: T0 + 70_000 }, 'latest is the newest by time');
  assert.equal(d1.online, true);
  assert.equal(d1.lastSeen, o.clock.now);
  // T0 is 20 s into its minute: seqs 0–39 fall in the first bucket, 70 in the second.
  const first = minuteStart(T0);
  const series = [
    { start: first, min: 20, max: 25, sum: 20 + 21 + 22 + 25 + 24, count: 5, last: 25 },
    { start: first + 60_000, min: 90, max: 90, sum: 90, count: 1, last: 90 },
  ];
  assert.deepEqual(await o.store.series('d1', 'temp', T0, T0 + 120_000), series);
  const again = await o.reopen();
  assert.deepEqual(again.get('d1'), d1);
  assert.deepEqual(again.get('d2')!.counts, { received: 1, duplicates: 0, missing: 0 });
  assert.deepEqual(await again.series('d1', 'temp', T0, T0 + 120_000), series);
  // a late point lands in a bucket written before the reopen and merges with it
  await again.apply([data('d1', [3])], { source: 'gw-1', seq: 3 });
  assert.deepEqual(
    (await again.series('d1', 'temp', T0, T0 + 120_000)).map((b) => b.count),
    [6, 1],
  );
  assert.deepEqual(again.get('d1')!.counts, { received: 7, duplicates: 0, missing: 64 });
  const last = await o.reopen();
  assert.deepEqual(
    (await last.series('d1', 'temp', T0, T0 + 120_000)).map((b) => [b.count, b.sum]),
    [
      [6, 135],
      [1, 90],
    ],
  );
});

test('a retried batch (same source and seq) changes nothing, also after a restart', async (t) => {
  const o = await openStore(t);
  const batch = [data('d1', [0, 1, 2])];
  assert.deepEqual(await o.store.apply(batch, { source: 'gw-1', seq: 7 }), {
    duplicate: false,
    points: 3,
    readings: 3,
  });
  const writes = o.store.writes;
  assert.deepEqual(await o.store.apply(batch, { source: 'gw-1', seq: 7 }), { duplicate: true, points: 0, readings: 0 });
  assert.equal(o.store.writes, writes, 'a duplicate writes nothing');
  const again = await o.reopen();
  assert.equal((await again.apply(batch, { source: 'gw-1', seq: 7 })).duplicate, true);
  assert.equal((await again.apply(batch, { source: 'gw-2', seq: 7 })).duplicate, false, 'dedup is per source');
  // ...whose readings were seen: duplicate readings, not applied twice
  assert.deepEqual(again.get('d1')!.counts, { received: 3, duplicates: 3, missing: 0 });
  assert.equal((await again.series('d1', 'temp', T0, T0 + 60_000))[0].count, 3, 'rollups did not double');
});

test('a batch applied whole after some of its parts (the ring changed back) counts readings without seq once, across a restart', async (t) => {
  const o = await openStore(t);
  const noSeq = (id: string) => ({ ...data(id, [0, 1]), seq: [], seqTs: [] });
  const id = { source: 'gw-1', seq: 4 };
  assert.equal((await o.store.apply([noSeq('a'), noSeq('b')], { ...id, part: 1 })).readings, 2 * 2);
  const again = await o.reopen();
  const whole = await again.apply([noSeq('a'), noSeq('b'), noSeq('c')], id);
  assert.deepEqual(whole, { duplicate: false, points: 2, readings: 2 }, 'only c: a and b came as a part');
  for (const d of ['a', 'b', 'c']) {
    assert.deepEqual(again.get(d)!.counts, { received: 2, duplicates: 0, missing: 0 }, d);
    assert.equal((await again.series(d, 'temp', T0, T0 + 60_000))[0].count, 2, `${d}: rollups hold each reading once`);
  }
  assert.equal((await again.apply([noSeq('c')], { ...id, part: 2 })).duplicate, true, 'any part of it now');
});

test("with the agent's low-water mark, a backlog batch this node never saw is applied after thousands of sparse newer ones and a restart", async (t) => {
  // A ring-aware agent: this node gets every third batch; batch 10 was for a node that died, and is resent here
  // much later. Readings carry no seq, so only batch dedup can tell a retry from a new batch.
  const o = await openStore(t);
  const noSeq = (id: string, at: number) => ({
    deviceId: id,
    metric: ['temp'],
    value: [at],
    ts: [T0 + at],
    seq: [],
    seqTs: [],
  });
  for (let s = 12; s <= 6_000; s += 3)
    await o.store.apply([noSeq('d-new', s)], { source: 'gw-1', seq: s, ackedBelow: 10 });
  const again = await o.reopen();
  assert.deepEqual(await again.apply([noSeq('d-old', 10)], { source: 'gw-1', seq: 10, ackedBelow: 10 }), {
    duplicate: false,
    points: 1,
    readings: 1,
  });
  assert.equal(
    (await again.apply([noSeq('d-old', 10)], { source: 'gw-1', seq: 10, ackedBelow: 10 })).duplicate,
    true,
    'and its retry is a duplicate',
  );
  // The agent moved on: everything below 5,990 acknowledged. A stale copy of batch 5,988 is a duplicate.
  assert.equal(
    (await again.apply([noSeq('d-new', 6_003)], { source: 'gw-1', seq: 6_003, ackedBelow: 5_990 })).duplicate,
    false,
  );
  assert.equal(
    (await again.apply([noSeq('d-new', 5_988)], { source: 'gw-1', seq: 5_988, ackedBelow: 5_988 })).duplicate,
    true,
  );
  assert.equal(again.get('d-old')!.latest.temp.value, 10);
});

test('an agent whose buffer was wiped numbers from 1 again under a new buffer id: its batches are applied, not taken for retries', async (t) => {
  const restarts: [string, number, number][] = [];
  const o = await openStore(t, { onNewBuffer: (agent, was, now) => restarts.push([agent, was, now]) });
  const noSeq = (at: number) => [
    { deviceId: 'd-wiped', metric: ['temp'], value: [at], ts: [T0 + at], seq: [], seqTs: [] },
  ];
  for (let s = 1; s <= 40; s++)
    await o.store.apply(noSeq(s), { source: 'gw-w', seq: s, ackedBelow: s, bufferId: 1111 });
  assert.equal(
    (await o.store.apply(noSeq(40), { source: 'gw-w', seq: 40, ackedBelow: 40, bufferId: 1111 })).duplicate,
    true,
    'a retry of the old buffer',
  );
  const again = await o.reopen();
  for (let s = 1; s <= 3; s++) {
    assert.equal(
      (await again.apply(noSeq(100 + s), { source: 'gw-w', seq: s, ackedBelow: 1, bufferId: 2222 })).duplicate,
      false,
      `new buffer, seq ${s}`,
    );
  }
  assert.equal(
    (await again.apply(noSeq(103), { source: 'gw-w', seq: 3, ackedBelow: 1, bufferId: 2222 })).duplicate,
    true,
    'and its own retries are duplicates',
  );
  assert.equal(again.get('d-wiped')!.counts.received, 43);
  assert.deepEqual(restarts, [['gw-w', 1111, 2222]], 'reported once, not for the first id');
});

test('a retry that arrives while the first copy is still being written is answered only once that write is durable', async (t) => {
  const o = await openStore(t);
  const first = o.store.apply([data('d1', [0])], { source: 'gw-1', seq: 1 });
  const retry = o.store.apply([data('d1', [0])], { source: 'gw-1', seq: 1 });
  let firstDone = false;
  void first.then(() => (firstDone = true));
  const r = await retry;
  assert.equal(r.duplicate, true);
  await Promise.resolve();
  assert.ok(firstDone, 'the original was durable before the retry was answered');
  assert.equal(o.store.writes, 1);
});

test('every point of a batch of many devices and metrics lands once, readable after reopen', async (t) => {
  const o = await openStore(t);
  const metrics = ['temperature', 'humidity', 'pressure', 'battery', 'rssi'];
  for (let round = 0; round < 3; round++) {
    const batch = Array.from({ length: 300 }, (_, d) =>
      multi(`dev-${String(d).padStart(3, '0')}`, [round * 50, round * 50 + 1], metrics),
    );
    const r = await o.store.apply(batch, { source: 'gw-1', seq: round + 1 });
    assert.deepEqual(r, { duplicate: false, points: 300 * 2 * 5, readings: 600 });
  }
  const check = async () => {
    assert.equal(o.store.deviceCount, 300);
    const v = o.store.get('dev-123')!;
    assert.deepEqual(v.counts, { received: 6, duplicates: 0, missing: 96 });
    assert.deepEqual(Object.keys(v.latest), metrics);
    assert.deepEqual(v.latest.pressure, { value: 200 + 101, ts: T0 + 101_000 });
    const s = await o.store.series('dev-123', 'rssi', T0, T0 + 200_000);
    assert.equal(
      s.reduce((n, b) => n + b.count, 0),
      6,
    );
    assert.equal(
      s.reduce((n, b) => n + b.sum, 0),
      6 * 400 + 0 + 1 + 50 + 51 + 100 + 101,
    );
  };
  await check();
  await o.reopen();
  await check();
});

test('listing pages by id with an online filter; devices go offline after the silence timeout', async (t) => {
  const { store, clock } = await openStore(t);
  await store.apply(
    ['c', 'a', 'b', 'd'].map((id) => data(id, [0])),
    null,
  );
  assert.deepEqual(store.sweepOnline(), { wentOffline: [], wentOnline: ['c', 'a', 'b', 'd'] });
  clock.now += 30_000;
  await store.apply([data('b', [1])], null);
  assert.deepEqual(store.list({ limit: 3 }), {
    devices: ['a', 'b', 'c'].map((id) => ({ id, online: true, lastSeen: id === 'b' ? clock.now : clock.now - 30_000 })),
    next: 'c',
  });
  assert.deepEqual(store.list({ limit: 3, cursor: 'c' }), {
    devices: [{ id: 'd', online: true, lastSeen: clock.now - 30_000 }],
    next: null,
  });
  assert.deepEqual(store.list({ limit: 4 }).next, null, 'an exactly full last page has no next');
  clock.now += 40_000; // a, c, d silent for 70 s
  assert.equal(store.onlineCount, 1);
  assert.deepEqual(store.sweepOnline(), { wentOffline: ['c', 'a', 'd'], wentOnline: [] });
  assert.deepEqual(store.sweepOnline(), { wentOffline: [], wentOnline: [] }, 'reported once');
  assert.deepEqual(
    store.list({ limit: 10, online: false }).devices.map((d) => d.id),
    ['a', 'c', 'd'],
  );
  assert.deepEqual(store.list({ limit: 1, online: false }), {
    devices: [{ id: 'a', online: false, lastSeen: clock.now - 70_000 }],
    next: 'a',
  });
  assert.deepEqual(store.list({ limit: 1, online: false, cursor: 'c' }), {
    devices: [{ id: 'd', online: false, lastSeen: clock.now - 70_000 }],
    next: null,
  });
  assert.deepEqual(
    store.list({ limit: 1, online: true }),
    { devices: [{ id: 'b', online: true, lastSeen: clock.now - 40_000 }], next: null },
    'no next when no more match',
  );
  await store.apply([data('a', [1])], null);
  assert.deepEqual(store.sweepOnline(), { wentOffline: [], wentOnline: ['a'] });
  clock.now += 60_000;
  assert.deepEqual(store.sweepOnline().wentOffline.sort(), ['a', 'b']);
  assert.equal(store.onlineCount, 0);
});

test('the online state after a restart comes from last seen, with no transitions reported for it', async (t) => {
  const o = await openStore(t);
  await o.store.apply([data('old', [0])], null);
  o.clock.now += 50_000;
  await o.store.apply([data('new', [0])], null);
  o.store.sweepOnline();
  o.clock.now += 20_000;
  await o.reopen();
  assert.deepEqual(
    o.store.list({ limit: 10 }).devices.map((d) => [d.id, d.online]),
    [
      ['new', true],
      ['old', false],
    ],
  );
  assert.deepEqual(o.store.sweepOnline(), { wentOffline: [], wentOnline: [] });
});

test('device ids and metric names that cannot be keys are skipped, not stored', async (t) => {
  const { store } = await openStore(t);
  const r = await store.apply(
    [data('', [0]), data('a\u0000b', [0]), data('ok', [0], 'bad\u0000name'), data('ok', [1])],
    null,
  );
  assert.equal(r.points, 1);
  assert.deepEqual(
    store.list({ limit: 10 }).devices.map((d) => d.id),
    ['ok'],
  );
  assert.deepEqual(Object.keys(store.get('ok')!.latest), ['temp']);
});

test("a device's resource (gateway, site…) is kept as last received, across a reopen and a handoff", async (t) => {
  const { MetricsEncoder } = await import('../../../../protocol/otlp/metrics-encoder.js');
  const { decodeRequest } = await import('../../../../aggregator/ingest/batch-decoder.js');
  const { Signal } = await import('../../../../protocol/otlp/signal.js');
  const { resourceAttributes } = await import('../../../../protocol/otlp/plain.js');
  const batch = (site: string, seq: number) =>
    decodeRequest(
      Signal.METRICS,
      new MetricsEncoder({ gatewayId: 'gw-1', attributes: { site } }).encode([
        { deviceId: 'd1', readings: [{ ts: T0 + seq * 1000, seq, names: ['t'], values: [seq], attributes: null }] },
      ]),
    );
  const o = await openStore(t);
  await o.store.apply(batch('north', 1), { source: 'gw-1', seq: 1 });
  const attrs = () => resourceAttributes(o.store.get('d1')!.resource!);
  assert.equal(attrs().site, 'north');
  await o.store.apply(batch('south', 2), { source: 'gw-1', seq: 2 });
  assert.deepEqual(attrs(), {
    'device.id': 'd1',
    'service.name': 'iot-device',
    'otlp_edge.gateway.id': 'gw-1',
    site: 'south',
  });
  const again = await o.reopen();
  assert.equal(resourceAttributes(again.get('d1')!.resource!).site, 'south', 'kept in the device record');
  const other = await openStore(t);
  await other.store.mergeDevice((await again.exportDevice('d1'))!);
  assert.equal(resourceAttributes(other.store.get('d1')!.resource!).site, 'south', 'moves with a handoff');
  // A device without a resource keeps the older record format (readable by older nodes).
  await other.store.apply([data('plain', [1])], { source: 'gw-2', seq: 1 });
  assert.equal(other.store.get('plain')!.resource, null);
});

test("a device's events are stored with its batch, newest first, trimmed to the newest 100, and deleted with it", async (t) => {
  const { LogsEncoder } = await import('../../../../protocol/otlp/logs-encoder.js');
  const { decodeRequest } = await import('../../../../aggregator/ingest/batch-decoder.js');
  const { Signal } = await import('../../../../protocol/otlp/signal.js');
  const o = await openStore(t);
  for (let b = 0; b < 4; b++) {
    const otlp = new LogsEncoder({ gatewayId: 'gw' }).encode([
      {
        deviceId: 'ev-1',
        events: Array.from({ length: 40 }, (_, i) => ({
          ts: T0 + (b * 40 + i) * 1000,
          severityNumber: 9,
          severityText: 'INFO',
          body: `event ${b * 40 + i}`,
          attributes: null,
        })),
      },
    ]);
    const r = await o.store.apply(
      decodeRequest(Signal.LOGS, otlp),
      { source: 'gw', seq: b + 1 },
      {
        signal: Signal.LOGS,
        otlp,
        points: 40,
      },
    );
    assert.equal(r.duplicate, false);
  }
  const first = await o.store.events('ev-1', 3);
  assert.deepEqual(
    first.map((e) => e.body),
    ['event 159', 'event 158', 'event 157'],
  );
  let all: unknown[] = [];
  for (let i = 0; i < 50 && all.length !== 100; i++) {
    await new Promise((r) => setTimeout(r, 20));
    all = await o.store.events('ev-1', 1000);
  }
  assert.equal(all.length, 100, 'the oldest beyond 100 are trimmed');
  const again = await o.reopen();
  assert.equal((await again.events('ev-1', 1000)).length, 100, 'kept across a restart');
  await again.deleteDevice('ev-1');
  assert.deepEqual(await again.events('ev-1', 1000), []);
});
