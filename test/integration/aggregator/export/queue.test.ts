import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceStateStore } from '../../../../aggregator/state/store.js';
import { ExportQueue, ExportQueues } from '../../../../aggregator/export/queue.js';
import { decodeRequest } from '../../../../aggregator/ingest/batch-decoder.js';
import { MetricsEncoder } from '../../../../protocol/otlp/metrics-encoder.js';
import { Signal } from '../../../../protocol/otlp/signal.js';
import { joinEntries, resourceEntries } from '../../../../protocol/otlp/split.js';
import { tempDir } from '../../../helpers/tmp.js';

const enc = new MetricsEncoder({ gatewayId: 'gw' });
const request = (devices: string[], seq: number, n = 3) =>
  enc.encode(
    devices.map((deviceId) => ({
      deviceId,
      readings: Array.from({ length: n }, (_, i) => ({
        ts: 1e12 + i,
        seq: seq * 100 + i,
        names: ['a', 'b'],
        values: [i, -i],
        attributes: null,
      })),
    })),
  );

async function open(dir: string, maxBytes = 1 << 30) {
  const q = new ExportQueue('sink', 'raw', maxBytes, new Set([Signal.METRICS, Signal.TRACES]), () => undefined);
  const store = await DeviceStateStore.open({
    dir,
    offlineAfterMs: 60_000,
    rollupRetentionMs: 86_400_000,
    exports: new ExportQueues([q]),
  });
  return { q, store };
}

test('a request is cut along its resources: device ids, items per resource, and the joined bytes decode to just those devices', () => {
  const req = request(['d1', 'd2', 'd3'], 1);
  const entries = resourceEntries(Signal.METRICS, req);
  assert.deepEqual(
    entries.map((e) => [e.deviceId, e.items]),
    [
      ['d1', 9],
      ['d2', 9],
      ['d3', 9],
    ],
    'two metrics and the seq gauge, three readings each',
  );
  const part = joinEntries(req, [entries[0], entries[2]]);
  assert.deepEqual(
    decodeRequest(Signal.METRICS, part).map((d) => d.deviceId),
    ['d1', 'd3'],
  );
  assert.equal(joinEntries(req, entries), req, 'all entries: the request itself, not a copy');
});

test('the export copy is written with the state change that carries it, deduplicated with it, and reloaded at open', async (t) => {
  const dir = tempDir(t);
  let { q, store } = await open(dir);
  const raw = request(['d1'], 1);
  const data = decodeRequest(Signal.METRICS, raw);
  await store.apply(data, { source: 'gw', seq: 1 }, { signal: Signal.METRICS, otlp: raw, points: -1 });
  assert.equal(q.length, 1);
  assert.equal(q.points, 9, 'points counted from the request');
  const dup = await store.apply(data, { source: 'gw', seq: 1 }, { signal: Signal.METRICS, otlp: raw, points: -1 });
  assert.equal(dup.duplicate, true);
  assert.equal(q.length, 1, 'a duplicate batch is not queued again');
  assert.equal(await store.exports.enqueue({ signal: Signal.LOGS, otlp: raw, points: 1 }), 0, 'no exporter takes logs');
  assert.equal(await store.exports.enqueue({ signal: Signal.TRACES, otlp: raw, points: 2 }), 1);
  await store.close();
  ({ q, store } = await open(dir));
  t.after(() => store.close());
  assert.equal(q.length, 2);
  assert.equal(q.points, 11);
  const entries = q.take(100, 1 << 20);
  const requests = await store.exports.requests(q, entries);
  assert.deepEqual(Buffer.from(requests[0]!), Buffer.from(raw), 'the request as received');
  await store.exports.change((g) => q.settle(g, entries, false));
  assert.equal(q.length, 0);
});

test('past max_bytes the oldest entries go in the same write, counted, and the count survives a reopen', async (t) => {
  const dir = tempDir(t);
  let { q, store } = await open(dir, 2048);
  for (let seq = 1; seq <= 20; seq++) {
    const raw = request([`dev-${seq}`], seq, 20);
    await store.apply(
      decodeRequest(Signal.METRICS, raw),
      { source: 'gw', seq },
      { signal: Signal.METRICS, otlp: raw, points: -1 },
    );
  }
  assert.ok(q.bytes <= 2048);
  assert.ok(q.dropped.queue_full.batches > 0);
  assert.equal(q.points + q.dropped.queue_full.points, 20 * 60, 'every point queued or counted');
  const dropped = q.dropped.queue_full.points;
  await store.close();
  ({ q, store } = await open(dir, 2048));
  t.after(() => store.close());
  assert.equal(q.dropped.queue_full.points, dropped);
  assert.equal(q.points + dropped, 20 * 60);
});

test('the queues LevelDB holds are listed by name, one seek each (for the warning about queues no exporter sends)', async (t) => {
  const dir = tempDir(t);
  const { q, store } = await open(dir);
  t.after(() => store.close());
  const raw = request(['d1'], 1);
  await store.apply(
    decodeRequest(Signal.METRICS, raw),
    { source: 'gw', seq: 1 },
    { signal: Signal.METRICS, otlp: raw, points: -1 },
  );
  await store.apply(
    decodeRequest(Signal.METRICS, raw),
    { source: 'gw', seq: 2 },
    { signal: Signal.METRICS, otlp: raw, points: -1 },
  );
  assert.equal(q.length, 2);
  assert.deepEqual(await store.exports.storedQueues(), ['sink']);
});
