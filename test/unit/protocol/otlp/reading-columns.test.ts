import { reading } from '../../../helpers/readings.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsEncoder } from '../../../../protocol/otlp/metrics-encoder.js';
import { ReadingColumns } from '../../../../protocol/otlp/reading-columns.js';
import { decodeMetricsRequest } from '../../../../protocol/otlp/decode.js';
import type { DeviceReadings } from '../../../../protocol/payload/types.js';

const T = 1732280000000;

/** Device → metric → [ts ms, value] as the request carries them, whatever encoded it. */
function contents(request: Uint8Array) {
  const out: Record<string, Record<string, [number, number][]>> = {};
  for (const rm of decodeMetricsRequest(request).resourceMetrics) {
    const id = rm.resource!.attributes!.find((kv) => kv.key === 'device.id')!.value.stringValue!;
    const metrics = (out[id] ??= {});
    for (const m of rm.scopeMetrics[0].metrics)
      metrics[m.name] = (m.gauge ?? m.sum)!.dataPoints.map((p) => [
        Number(BigInt(p.timeUnixNano!) / 1_000_000n),
        p.asDouble ?? Number(p.asInt),
      ]);
  }
  return out;
}

test('readings of interleaved devices come out grouped by device, each in arrival order, points counted', () => {
  const c = new ReadingColumns();
  assert.equal(c.add('a', [reading(T, 1, { t: 1 }), reading(T + 1, 2, { t: 2, h: 5 })]), 5);
  assert.equal(c.add('b', [reading(T, -1, { t: 10 })]), 1);
  assert.equal(c.add('a', [reading(T + 2, 3, { h: 6 })]), 2);
  assert.deepEqual(c.deviceIds.slice(0, c.deviceCount), ['a', 'b']);
  assert.deepEqual(c.devicePoints.slice(0, c.deviceCount), [7, 1]);
  assert.equal(c.points, 8);
  const { order, first } = c.byDevice();
  assert.deepEqual([...first], [0, 3, 4]);
  assert.deepEqual([...order], [0, 1, 3, 2]);
  const enc = new MetricsEncoder({ gatewayId: 'gw' });
  assert.deepEqual(contents(enc.encodeColumns(c, [0, 1], c.byDevice())), {
    a: {
      t: [
        [T, 1],
        [T + 1, 2],
      ],
      h: [
        [T + 1, 5],
        [T + 2, 6],
      ],
      'otlp_edge.device.seq': [
        [T, 1],
        [T + 1, 2],
        [T + 2, 3],
      ],
    },
    b: { t: [[T, 10]] },
  });
  assert.deepEqual(Object.keys(contents(enc.encodeColumns(c, [1], c.byDevice()))), ['b'], 'only the devices asked');
});

test('columns emptied and reused for a smaller batch carry only that batch', () => {
  const big: DeviceReadings[] = [];
  for (let d = 0; d < 50; d++) {
    const readings = [];
    for (let i = 0; i < 20; i++) readings.push(reading(T + i, i, { t: d + i, h: i, p: d }));
    big.push({ deviceId: `dev-${d}`, readings });
  }
  const small: DeviceReadings[] = [
    { deviceId: 'dev-7', readings: [reading(T, -1, { t: 0.5 })] },
    { deviceId: 'new', readings: [reading(T + 9, 4, { x: 3 })] },
  ];
  const c = new ReadingColumns();
  const enc = new MetricsEncoder({ gatewayId: 'gw' });
  for (const d of big) c.add(d.deviceId, d.readings);
  assert.deepEqual(contents(enc.encodeColumns(c, [...Array(50).keys()], c.byDevice())), contents(enc.encode(big)));
  c.clear();
  assert.equal(c.size, 0);
  assert.equal(c.points, 0);
  for (const d of small) c.add(d.deviceId, d.readings);
  const fresh = new MetricsEncoder({ gatewayId: 'gw' }).encode(small);
  assert.deepEqual(enc.encodeColumns(c, [0, 1], c.byDevice()), fresh, 'byte for byte what a fresh encoder writes');
  assert.deepEqual(contents(fresh), {
    'dev-7': { t: [[T, 0.5]] },
    new: {
      x: [[T + 9, 3]],
      'otlp_edge.device.seq': [[T + 9, 4]],
    },
  });
});
