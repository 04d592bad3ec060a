import { reading } from '../../../helpers/readings.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsEncoder } from '../../../../protocol/otlp/metrics-encoder.js';
import { LogsEncoder } from '../../../../protocol/otlp/logs-encoder.js';
import { decodeLogsRequest, decodeMetricsRequest } from '../../../../protocol/otlp/decode.js';
import type { KeyValueJson } from '../../../../protocol/otlp/json-types.js';
import { VERSION } from '../../../../protocol/version.js';

const attrs = (kvs: KeyValueJson[] | undefined) =>
  Object.fromEntries((kvs ?? []).map((kv) => [kv.key, kv.value.stringValue ?? kv.value.intValue ?? kv.value]));

test('one ResourceMetrics per device with device, service and gateway attributes', () => {
  const enc = new MetricsEncoder({
    gatewayId: 'gw-7',
    attributes: { site: 'plant-7', line: '2' },
    serviceName: 'boilers',
  });
  const req = decodeMetricsRequest(
    enc.encode([
      { deviceId: 'dev-a', readings: [reading(1732280000000, 1, { temp: 20 })] },
      { deviceId: 'dev-b', readings: [reading(1732280000000, -1, { temp: 21.5 })] },
    ]),
  );
  assert.equal(req.resourceMetrics.length, 2);
  assert.deepEqual(attrs(req.resourceMetrics[0].resource!.attributes), {
    'device.id': 'dev-a',
    'service.name': 'boilers',
    'otlp_edge.gateway.id': 'gw-7',
    site: 'plant-7',
    line: '2',
  });
  assert.equal(attrs(req.resourceMetrics[1].resource!.attributes)['device.id'], 'dev-b');
  assert.deepEqual(req.resourceMetrics[0].scopeMetrics[0].scope, { name: 'otlp-edge-agent', version: VERSION });
});

test('points are grouped per metric in reading order even when readings name different metrics', () => {
  const enc = new MetricsEncoder({ gatewayId: 'gw' });
  const readings = [
    reading(1000e9, 5, { temp: 20, hum: 40 }),
    reading(1001e9, 6, { hum: 41, temp: 21, door: 1 }),
    reading(1002e9, -1, { door: 0 }, ['fw', '1.4.2', 'mode', 'eco']),
  ];
  const [rm] = decodeMetricsRequest(enc.encode([{ deviceId: 'd', readings }])).resourceMetrics;
  const metrics = rm.scopeMetrics[0].metrics;
  assert.deepEqual(
    metrics.map((m) => m.name),
    ['temp', 'hum', 'door', 'otlp_edge.device.seq'],
  );
  const temp = metrics[0].gauge!.dataPoints;
  assert.deepEqual(
    temp.map((p) => p.asInt),
    ['20', '21'],
  );
  assert.deepEqual(
    temp.map((p) => p.timeUnixNano),
    ['1000000000000000000', '1001000000000000000'],
  );
  const door = metrics[2].gauge!.dataPoints;
  assert.deepEqual(
    door.map((p) => p.asInt),
    ['1', '0'],
  );
  assert.deepEqual(attrs(door[1].attributes), { fw: '1.4.2', mode: 'eco' });
  assert.deepEqual(door[0].attributes, []);
  // seq only for readings that carried one
  assert.deepEqual(
    metrics[3].gauge!.dataPoints.map((p) => p.asInt),
    ['5', '6'],
  );
});

test('integers are as_int, fractions as_double, and configured counters are monotonic cumulative sums', () => {
  const enc = new MetricsEncoder({ gatewayId: 'gw', counters: ['pulses'] });
  const [rm] = decodeMetricsRequest(
    enc.encode([{ deviceId: 'd', readings: [reading(1e12, -1, { pulses: 7, temp: -3.25, big: 2 ** 60, neg: -42 })] }]),
  ).resourceMetrics;
  const [pulses, temp, big, neg] = rm.scopeMetrics[0].metrics;
  assert.equal(pulses.gauge, undefined);
  assert.equal(pulses.sum!.aggregationTemporality, 2);
  assert.equal(pulses.sum!.isMonotonic, true);
  assert.equal(pulses.sum!.dataPoints[0].asInt, '7');
  assert.equal(temp.gauge!.dataPoints[0].asDouble, -3.25);
  assert.equal(big.gauge!.dataPoints[0].asDouble, 2 ** 60, 'beyond 2^53 an integer cannot be kept exactly: double');
  assert.equal(neg.gauge!.dataPoints[0].asInt, '-42');
  assert.equal(rm.scopeMetrics[0].metrics.length, 4, 'no seq gauge without seq');
});

test('devices with no readings are left out and an empty batch is an empty request', () => {
  const enc = new MetricsEncoder({ gatewayId: 'gw' });
  assert.equal(enc.encode([]).length, 0);
  const req = decodeMetricsRequest(
    enc.encode([
      { deviceId: 'x', readings: [] },
      { deviceId: 'y', readings: [reading(1e12, 1, {})] },
    ]),
  );
  assert.equal(req.resourceMetrics.length, 1);
  assert.deepEqual(
    req.resourceMetrics[0].scopeMetrics[0].metrics.map((m) => m.name),
    ['otlp_edge.device.seq'],
  );
});

test('a large batch (5,000 points, many devices) decodes back to the same values', () => {
  const enc = new MetricsEncoder({ gatewayId: 'gw' });
  const batch = [];
  for (let d = 0; d < 250; d++) {
    const readings = [];
    for (let i = 0; i < 4; i++)
      readings.push(reading(1732280000000 + i * 1000, i, { temp: d + i / 10, hum: 40 + i, volt: 3.3 }));
    batch.push({ deviceId: `dev-${d}`, readings });
  }
  const first = enc.encode(batch);
  const second = enc.encode(batch);
  assert.deepEqual(second, first, 'encoding is deterministic and the reused buffer does not leak between batches');
  const req = decodeMetricsRequest(first);
  assert.equal(req.resourceMetrics.length, 250);
  let points = 0;
  for (const [d, rm] of req.resourceMetrics.entries()) {
    for (const m of rm.scopeMetrics[0].metrics) {
      points += m.gauge!.dataPoints.length;
      if (m.name === 'temp')
        assert.deepEqual(
          m.gauge!.dataPoints.map((p) => p.asDouble ?? Number(p.asInt)),
          [0, 1, 2, 3].map((i) => d + i / 10),
        );
    }
  }
  assert.equal(points, 250 * 4 * 4);
});

test('events become LogRecords with severity, typed body and attributes', () => {
  const enc = new LogsEncoder({ gatewayId: 'gw', attributes: { site: 's1' } });
  const req = decodeLogsRequest(
    enc.encode([
      {
        deviceId: 'd1',
        events: [
          {
            ts: 1732280000000,
            severityNumber: 17,
            severityText: 'error',
            body: 'valve stuck',
            attributes: ['valve', 3, 'ok', false],
          },
          {
            ts: 1732280000001.5,
            severityNumber: 0,
            severityText: '',
            body: { code: 'E42', detail: { temps: [1, 2.5] } },
            attributes: null,
          },
        ],
      },
    ]),
  );
  const rl = req.resourceLogs[0];
  assert.equal(attrs(rl.resource!.attributes).site, 's1');
  const [a, b] = rl.scopeLogs[0].logRecords;
  assert.equal(a.severityNumber, 17);
  assert.equal(a.severityText, 'error');
  assert.deepEqual(a.body, { stringValue: 'valve stuck' });
  assert.deepEqual(a.attributes, [
    { key: 'valve', value: { intValue: '3' } },
    { key: 'ok', value: { boolValue: false } },
  ]);
  assert.equal(a.timeUnixNano, '1732280000000000000');
  assert.equal(b.severityNumber, undefined);
  assert.equal(b.timeUnixNano, '1732280000001500000');
  assert.deepEqual(b.body, {
    kvlistValue: {
      values: [
        { key: 'code', value: { stringValue: 'E42' } },
        {
          key: 'detail',
          value: {
            kvlistValue: {
              values: [{ key: 'temps', value: { arrayValue: { values: [{ intValue: '1' }, { doubleValue: 2.5 }] } } }],
            },
          },
        },
      ],
    },
  });
});
