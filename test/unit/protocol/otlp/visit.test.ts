import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsEncoder } from '../../../../protocol/otlp/metrics-encoder.js';
import { visitMetricsRequest } from '../../../../protocol/otlp/visit.js';
import { ProtoWriter, Wire } from '../../../../protocol/otlp/writer.js';
import { writeStringKeyValue } from '../../../../protocol/otlp/resource.js';
import { ProtoError } from '../../../../protocol/errors.js';

function collect(bytes: Uint8Array) {
  const out: [string, string, number, number][] = [];
  let device = '';
  visitMetricsRequest(bytes, { resource: (d) => (device = d), point: (m, t, v) => out.push([device, m, t, v]) });
  return out;
}

test('the visitor sees every device and number point of an encoded batch, in order', () => {
  const enc = new MetricsEncoder({ gatewayId: 'gw', counters: ['pulses'] });
  const bytes = enc.encode([
    {
      deviceId: 'a',
      readings: [
        { ts: 1732280000123.5, seq: 4, names: ['temp', 'pulses'], values: [21.5, 7], attributes: ['fw', '1'] },
      ],
    },
    { deviceId: 'b', readings: [{ ts: 1732280001000, seq: -1, names: ['neg'], values: [-42], attributes: null }] },
  ]);
  assert.deepEqual(collect(bytes), [
    ['a', 'temp', 1732280000123.5, 21.5],
    ['a', 'pulses', 1732280000123.5, 7],
    ['a', 'otlp_edge.device.seq', 1732280000123.5, 4],
    ['b', 'neg', 1732280001000, -42],
  ]);
});

test('the visitor does not depend on field order: scope before resource, name after data', () => {
  const w = new ProtoWriter();
  w.fork(1); // ResourceMetrics
  w.fork(2); // scope_metrics first
  w.fork(2); // Metric
  w.fork(5); // gauge
  w.fork(1); // data point: value before time
  w.tag(6, Wire.FIXED64);
  w.sfixed64(-5);
  w.tag(3, Wire.FIXED64);
  w.timeFromMs(1000);
  w.join();
  w.join();
  w.stringField(1, 'late-name');
  w.join();
  w.join();
  w.fork(1); // resource after
  writeStringKeyValue(w, 1, 'service.name', 'x');
  writeStringKeyValue(w, 1, 'device.id', 'dev-late');
  w.join();
  w.join();
  assert.deepEqual(collect(w.finish()), [['dev-late', 'late-name', 1000, -5]]);
});

test('truncated input ends in ProtoError', () => {
  const bytes = new MetricsEncoder({ gatewayId: 'gw' }).encode([
    { deviceId: 'a', readings: [{ ts: 1e12, seq: 1, names: ['x'], values: [1], attributes: null }] },
  ]);
  for (let cut = 1; cut < bytes.length; cut += 7) {
    assert.throws(
      () => collect(bytes.subarray(0, cut)),
      (e: unknown) => e instanceof ProtoError,
      `cut at ${cut}`,
    );
  }
});
