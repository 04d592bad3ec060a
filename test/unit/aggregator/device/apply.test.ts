import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchApplier, type RollupSink } from '../../../../aggregator/device/apply.js';
import {
  Device,
  HEAD,
  HEAD_MINUTE,
  LATEST_TS,
  LATEST_VALUE,
  SLOT,
} from '../../../../aggregator/device/device-record.js';
import { addPoint, copyBucket, newBucket, rollupPoint } from '../../../../aggregator/device/rollups.js';
import type { DeviceData } from '../../../../aggregator/device/types.js';

const M0 = 28871333; // a minute
const T = M0 * 60_000;

/** Buckets outside the device record, as the store would keep them. */
class Sink implements RollupSink {
  readonly buckets = new Map<string, Float64Array>();
  rolled(dev: Device, slot: number, minute: number): void {
    this.buckets.set(`${dev.shape.names[slot]}@${minute}`, copyBucket(dev.m, slot * SLOT + HEAD));
  }
  late(dev: Device, slot: number, minute: number, value: number, ts: number): void {
    const k = `${dev.shape.names[slot]}@${minute}`;
    if (!this.buckets.has(k)) this.buckets.set(k, newBucket());
    addPoint(this.buckets.get(k)!, value, ts);
  }
}

function setup() {
  const sink = new Sink();
  const ap = new BatchApplier(sink);
  const dev = new Device('d1');
  const apply = (d: Omit<DeviceData, 'deviceId'>) => {
    ap.points = 0;
    ap.readings = 0;
    ap.applyDevice(dev, { deviceId: 'd1', ...d });
    return { points: ap.points, readings: ap.readings };
  };
  /** Every bucket of a metric, head included, oldest first. */
  const series = (metric: string) => {
    const slot = dev.shape.slotOf(metric)!;
    const out = [...sink.buckets]
      .filter(([k]) => k.startsWith(`${metric}@`))
      .map(([k, b]) => rollupPoint(Number(k.split('@')[1]), b));
    out.push(rollupPoint(dev.m[slot * SLOT + HEAD_MINUTE], dev.m, slot * SLOT + HEAD));
    return out.sort((a, b) => a.start - b.start);
  };
  const latest = (metric: string) => {
    const o = dev.shape.slotOf(metric)! * SLOT;
    return { value: dev.m[o + LATEST_VALUE], ts: dev.m[o + LATEST_TS] };
  };
  return { dev, apply, series, latest };
}

/** Readings with seqs: each reading `[seq, ts, {metric: value}]`, points listed metric by metric as OTLP does. */
function readings(list: [number | null, number, Record<string, number>][]): Omit<DeviceData, 'deviceId'> {
  const d = {
    metric: [] as string[],
    ts: [] as number[],
    value: [] as number[],
    seqTs: [] as number[],
    seq: [] as number[],
  };
  for (const [seq, ts] of list) {
    if (seq === null) continue;
    d.seqTs.push(ts);
    d.seq.push(seq);
  }
  const metrics = [...new Set(list.flatMap(([, , m]) => Object.keys(m)))];
  for (const name of metrics)
    for (const [, ts, m] of list) {
      if (!(name in m)) continue;
      d.metric.push(name);
      d.ts.push(ts);
      d.value.push(m[name]);
    }
  return d;
}

test('rollups take min, max, sum, count and last by time, across minute boundaries and out of order', () => {
  const { apply, series, latest } = setup();
  apply(
    readings([
      [0, T + 59_000, { t: 5 }],
      [1, T + 59_999, { t: 7 }],
      [2, T + 60_000, { t: 1 }],
    ]),
  );
  apply(
    readings([
      [4, T + 61_000, { t: 3 }],
      [3, T + 30_000, { t: 9 }],
    ]),
  ); // 3 is late, for the first minute
  assert.deepEqual(series('t'), [
    { start: T, min: 5, max: 9, sum: 21, count: 3, last: 7 },
    { start: T + 60_000, min: 1, max: 3, sum: 4, count: 2, last: 3 },
  ]);
  assert.deepEqual(latest('t'), { value: 3, ts: T + 61_000 }, 'latest is the newest by ts, not the last to arrive');
});

test('points of a duplicate reading are not applied again', () => {
  const { dev, apply, series } = setup();
  const batch = readings([
    [0, T, { t: 1, h: 40 }],
    [1, T + 1000, { t: 2, h: 41 }],
  ]);
  assert.deepEqual(apply(batch), { points: 4, readings: 2 });
  assert.deepEqual(apply(batch), { points: 0, readings: 0 });
  assert.deepEqual(
    apply(
      readings([
        [1, T + 1000, { t: 2, h: 41 }],
        [2, T + 2000, { t: 3, h: 42 }],
      ]),
    ),
    { points: 2, readings: 1 },
  );
  assert.deepEqual(
    series('t').map((b) => b.count),
    [3],
  );
  assert.deepEqual(dev.seq.counts, { received: 3, duplicates: 3, missing: 0 });
});

test('readings without a seq count once per distinct ts in a batch', () => {
  const { dev, apply } = setup();
  assert.deepEqual(
    apply(
      readings([
        [null, T, { t: 1, h: 2 }],
        [null, T + 1, { t: 1 }],
        [5, T + 2, { t: 0 }],
      ]),
    ),
    { points: 4, readings: 3 },
  );
  const many = readings(
    Array.from({ length: 40 }, (_, i) => [null, T + 10 + (i % 30), { t: i }] as [null, number, Record<string, number>]),
  );
  assert.deepEqual(apply(many), { points: 40, readings: 30 });
  assert.equal(dev.seq.counts.received, 33);
});

test('two readings with the same ts: each point goes with its own reading', () => {
  const { dev, apply, series } = setup();
  const d = { metric: ['t', 't'], ts: [T, T], value: [1, 2], seqTs: [T, T], seq: [7, 8] };
  assert.deepEqual(apply(d), { points: 2, readings: 2 });
  // the same two readings again, plus a new one at that ts: only the new reading's point is applied
  assert.deepEqual(
    apply({ metric: ['t', 't', 't'], ts: [T, T, T], value: [1, 2, 3], seqTs: [T, T, T], seq: [7, 8, 9] }),
    { points: 1, readings: 1 },
  );
  assert.deepEqual(series('t'), [{ start: T, min: 1, max: 3, sum: 6, count: 3, last: 3 }]);
  assert.deepEqual(dev.seq.counts, { received: 3, duplicates: 2, missing: 0 });
});

test('many readings per device find their points by ts (map lookup) and skip duplicates', () => {
  const { dev, apply, series } = setup();
  const list = Array.from(
    { length: 50 },
    (_, i) => [i, T + i * 100, { t: i, h: -i }] as [number, number, Record<string, number>],
  );
  assert.deepEqual(apply(readings(list)), { points: 100, readings: 50 });
  assert.deepEqual(apply(readings(list.slice(40).concat([[50, T + 5000, { t: 50, h: -50 }]]))), {
    points: 2,
    readings: 1,
  });
  assert.equal(series('h')[0].count, 51);
  assert.deepEqual(dev.seq.counts, { received: 51, duplicates: 10, missing: 0 });
});

test('points with a NaN or infinite value, or a negative time, are skipped', () => {
  const { apply, series } = setup();
  assert.deepEqual(
    apply({ metric: ['t', 't', 't', 't'], ts: [T, T + 1, -5, NaN], value: [NaN, Infinity, 1, 1], seqTs: [], seq: [] })
      .points,
    0,
  );
  assert.deepEqual(apply({ metric: ['t'], ts: [T], value: [4], seqTs: [], seq: [] }).points, 1);
  assert.deepEqual(series('t'), [{ start: T, min: 4, max: 4, sum: 4, count: 1, last: 4 }]);
});

test('a device record survives its encoding, with and without the elided fields', () => {
  const { dev, apply } = setup();
  apply(
    readings([
      [0, T, { t: 1, 'h.ü': 2 }],
      [2, T + 61_000, { t: 3 }],
      [1, T + 30_000, { h: 5 }],
    ]),
  );
  apply(readings([[3, T + 500, { late: 1 }]]));
  dev.lastSeen = 1732280000999;
  const buf = Buffer.alloc(dev.encodedSize());
  assert.equal(dev.encode(buf, new DataView(buf.buffer, buf.byteOffset, buf.byteLength), 0), buf.length);
  const back = Device.decode('d1', buf);
  assert.deepEqual(back.shape.names, dev.shape.names);
  assert.equal(back.shape, dev.shape, 'devices with the same metrics share one shape');
  assert.deepEqual(back.m.subarray(0, dev.shape.names.length * SLOT), dev.m.subarray(0, dev.shape.names.length * SLOT));
  assert.deepEqual(back.seq.counts, dev.seq.counts);
  assert.equal(back.lastSeen, dev.lastSeen);
});
