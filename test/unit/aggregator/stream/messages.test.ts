import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  eventMessages,
  itemJson,
  FilterError,
  itemCount,
  parseFilter,
  readingCount,
  ReadingSet,
} from '../../../../aggregator/stream/messages.js';
import { LiveQueue } from '../../../../aggregator/stream/queue.js';
import { LiveHub } from '../../../../aggregator/stream/hub.js';
import { StreamTickets } from '../../../../aggregator/stream/server.js';
import { LogsEncoder } from '../../../../protocol/otlp/logs-encoder.js';

const T0 = Date.parse('2026-12-02T10:00:00Z');
const params = (q: string) => new URLSearchParams(q);

test('stream filter: ids and prefixes, metrics, kinds, events=true; bad values are named', () => {
  const f = parseFilter(params('device=a,pump-*&device=b&metric=temp&events=true'), 10);
  assert.deepEqual(f.devices, ['a', 'b']);
  assert.deepEqual(f.prefixes, ['pump-']);
  assert.deepEqual(f.metrics, ['temp']);
  assert.deepEqual(f.kinds, ['reading', 'status', 'alert', 'event']);
  assert.deepEqual(parseFilter(params(''), 10).kinds, ['reading', 'status', 'alert'], 'events only on request');
  assert.deepEqual(parseFilter(params('kind=status'), 10).kinds, ['status']);
  assert.deepEqual(parseFilter(params('device=*'), 10).prefixes, [], '* is every device');
  for (const [q, what] of [
    ['device=a%20b', /device:.*not a device id/],
    ['kind=spans', /kind: "spans"; expected reading, event, status, alert/],
    ['events=yes', /events: expected true or false/],
    ['device=a,b,c', /at most 2/],
  ] as const)
    assert.throws(
      () => parseFilter(params(q), 2),
      (e: unknown) => e instanceof FilterError && what.test(e.message),
    );
});

test('readings: one message per reading (ts) of a device, seq attached, non-finite values left out', () => {
  const set = new ReadingSet({
    deviceId: 'd1',
    metric: ['t', 't', 'h', 'h', 'x'],
    ts: [T0, T0 + 1000, T0, T0 + 1000, T0],
    value: [1, 2, 3, 4, NaN],
    seqTs: [T0, T0 + 1000],
    seq: [7, 8],
  });
  assert.equal(set.count, 2);
  const all = [0, 1].map((i) => JSON.parse(set.json(i, [])!));
  assert.deepEqual(all, [
    { type: 'reading', device: 'd1', ts: '2026-12-02T10:00:00.000Z', seq: 7, metrics: { t: 1, h: 3 } },
    { type: 'reading', device: 'd1', ts: '2026-12-02T10:00:01.000Z', seq: 8, metrics: { t: 2, h: 4 } },
  ]);
  assert.deepEqual(JSON.parse(set.json(0, ['h'])!).metrics, { h: 3 });
  assert.equal(set.json(0, ['zzz']), null);
  // Names that mean something to JavaScript or JSON stay plain keys.
  const odd = new ReadingSet({
    deviceId: 'd"2',
    metric: ['__proto__', 'a"b'],
    ts: [T0, T0],
    value: [1, 2],
    seqTs: [],
    seq: [],
  });
  assert.deepEqual(JSON.parse(odd.json(0, [])!), {
    type: 'reading',
    device: 'd"2',
    ts: '2026-12-02T10:00:00.000Z',
    metrics: JSON.parse('{"__proto__":1,"a\\"b":2}'),
  });
});

test('readings are counted before any JSON is made: distinct valid ts, whatever the point order and batch size', () => {
  const d = (ts: number[], value = ts.map(() => 1)) => ({
    deviceId: 'd',
    metric: ts.map(() => 'm'),
    ts,
    value,
    seqTs: [],
    seq: [],
  });
  assert.equal(readingCount(d([T0, T0, T0 + 1, T0 + 1])), 2, 'reading by reading');
  assert.equal(readingCount(d([T0, T0 + 1, T0 + 2, T0, T0 + 1, T0 + 2])), 3, 'metric by metric, as OTLP lists them');
  assert.equal(readingCount(d([T0, -1, T0 + 1], [1, 1, Infinity])), 1, 'points the state skips make no reading');
  const backlog = Array.from({ length: 500 }, (_, i) => T0 + (i % 250) * 1000);
  assert.equal(readingCount(d(backlog)), 250, 'a backlog of many readings');
  assert.equal(readingCount(d([T0, T0 + 5])), 2, 'nothing left over from the last count');
  for (const ts of [[T0, T0, T0 + 1, T0 + 1], backlog]) assert.equal(readingCount(d(ts)), new ReadingSet(d(ts)).count);
});

test("the hub queues a batch's readings in items of a few hundred messages, counted exactly", () => {
  const hub = new LiveHub('n1');
  const items: ReturnType<typeof itemJson>[] = [];
  const counts: number[] = [];
  hub.subscribe({ devices: [], prefixes: [], metrics: [], kinds: ['reading'] }, (item) => {
    counts.push(itemCount(item));
    items.push(itemJson(item));
  });
  const batch = Array.from({ length: 100 }, (_, i) => ({
    deviceId: `dev-${i}`,
    metric: ['t', 'h', 't', 'h', 't', 'h'],
    ts: [T0, T0, T0 + 1000, T0 + 1000, T0 + 2000, T0 + 2000],
    value: [1, 2, 3, 4, 5, 6],
    seqTs: [],
    seq: [],
  }));
  hub.readings(batch);
  assert.equal(
    counts.reduce((a, b) => a + b),
    300,
  );
  assert.ok(counts.length >= 2 && counts.every((c) => c <= 258), `items of ${counts.join(', ')} messages`);
  assert.deepEqual(
    items.map((j) => j.length),
    counts,
    'each item makes as many messages as it counts',
  );
  assert.deepEqual(JSON.parse(items[0][1]), {
    type: 'reading',
    device: 'dev-0',
    ts: '2026-12-02T10:00:01.000Z',
    metrics: { t: 3, h: 4 },
  });
});

test('events: log records of the devices wanted, with severity, body and attributes', () => {
  const otlp = new LogsEncoder({ gatewayId: 'gw' }).encode([
    {
      deviceId: 'd1',
      events: [{ ts: T0, severityText: 'ERROR', severityNumber: 17, body: 'pump jammed', attributes: ['code', 'E7'] }],
    },
    { deviceId: 'd2', events: [{ ts: T0, severityText: 'INFO', severityNumber: 9, body: 'hi', attributes: null }] },
  ]);
  const ev = eventMessages(otlp, (id) => id === 'd1', 10);
  assert.equal(ev.length, 1);
  assert.deepEqual(ev[0], {
    type: 'event',
    device: 'd1',
    ts: '2026-12-02T10:00:00.000Z',
    severity: 'ERROR',
    body: 'pump jammed',
    attributes: { code: 'E7' },
  });
});

test('the queue drops the oldest past its bound, counts and reports them, and is caught up once drained', () => {
  const q = new LiveQueue(3);
  for (const m of ['a', 'b', 'c']) assert.equal(q.push(m), 0);
  assert.equal(q.push('d'), 1);
  assert.equal(q.push('e'), 1);
  assert.equal(q.dropped, 2);
  assert.ok(q.droppingSince !== null);
  assert.equal(q.takeUnannounced(), 2);
  assert.equal(q.takeUnannounced(), 0);
  assert.deepEqual(q.take(2), ['c', 'd']);
  assert.equal(q.length, 1);
  assert.ok(q.droppingSince !== null, 'not caught up while messages wait');
  assert.deepEqual(q.take(10), ['e']);
  assert.equal(q.droppingSince, null);
});

test('an item of several messages counts for each against the bound, and the newest is never the one dropped', () => {
  const many = (count: number, tag: string) => ({ count, json: () => Array.from({ length: count }, () => tag) });
  const q = new LiveQueue(5);
  q.push(many(3, 'a'));
  q.push('b');
  assert.equal(q.length, 4);
  assert.equal(q.overflows(many(1, 'x')), false, 'room for one more');
  assert.equal(q.overflows(many(2, 'x')), true);
  assert.equal(q.push(many(4, 'c')), 3);
  assert.equal(q.dropped, 3, 'the three of a went; b and c fit');
  assert.equal(q.length, 5);
  assert.equal(q.push(many(9, 'd')), 5, 'larger than the bound: kept alone');
  assert.equal(q.overflows('e'), true);
  assert.equal(q.refuse(many(2, 'e')), 2, 'refused: counted, not held');
  assert.equal(q.takeUnannounced(), 10);
  assert.equal(q.dropped, 10, 'three of a, b, c, and the two refused');
  assert.equal(q.length, 9);
  assert.deepEqual(q.take(1).flatMap(itemJson), Array(9).fill('d'));
  assert.equal(q.length, 0);
});

test('the hub hands each subscriber what its filter takes, and nothing after it unsubscribes', () => {
  const hub = new LiveHub('n1');
  const all: string[] = [];
  const pumps: string[] = [];
  const stopAll = hub.subscribe({ devices: [], prefixes: [], metrics: [], kinds: ['reading', 'status'] }, (j) =>
    all.push(...itemJson(j)),
  );
  hub.subscribe({ devices: ['x'], prefixes: ['pump-'], metrics: ['t'], kinds: ['reading'] }, (j) =>
    pumps.push(...itemJson(j)),
  );
  const data = (id: string) => ({ deviceId: id, metric: ['t', 'h'], ts: [T0, T0], value: [1, 2], seqTs: [], seq: [] });
  hub.readings([data('pump-1'), data('fan-1')]);
  hub.status('pump-1', false, T0);
  assert.equal(all.length, 3);
  assert.deepEqual(
    pumps.map((j) => JSON.parse(j)),
    [{ type: 'reading', device: 'pump-1', ts: '2026-12-02T10:00:00.000Z', metrics: { t: 1 } }],
  );
  stopAll();
  hub.readings([data('pump-2')]);
  assert.equal(all.length, 3);
  assert.equal(pumps.length, 2);
  assert.equal(hub.size, 1);
});

test('stream tickets are one-use and expire', () => {
  const t = new StreamTickets(30_000);
  const a = t.issue({ name: 'ops', tenant: 'acme' }, T0)!;
  assert.deepEqual(t.spend(a.ticket, T0 + 1000), { name: 'ops', tenant: 'acme' }, 'the tenant travels with the ticket');
  assert.equal(t.spend(a.ticket, T0 + 1000), null, 'spent');
  const b = t.issue({ name: 'ops' }, T0)!;
  assert.equal(t.spend(b.ticket, T0 + 30_000), null, 'expired');
  assert.equal(t.spend('made-up', T0), null);
});

test('events: only the last records of a device are decoded, whatever the request holds; too-deep bodies are left out', async () => {
  const { deepLogsRequest, tinyLogsRequest } = await import('../../../helpers/otlp-bytes.js');
  const flood = tinyLogsRequest('flood', 200_000);
  const ev = eventMessages(flood, () => true, 5);
  assert.equal(ev.length, 5, 'the last five of 200,000');
  assert.deepEqual(
    eventMessages(flood, (id) => id !== 'flood', 5),
    [],
  );
  assert.deepEqual(
    eventMessages(deepLogsRequest('deep', 20_000), () => true, 5),
    [],
  );
});
