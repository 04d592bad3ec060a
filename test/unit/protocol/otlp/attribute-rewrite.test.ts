import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsEncoder } from '../../../../protocol/otlp/metrics-encoder.js';
import { LogsEncoder } from '../../../../protocol/otlp/logs-encoder.js';
import { Signal } from '../../../../protocol/otlp/signal.js';
import { rewriteAttributes, rewriteResource } from '../../../../protocol/otlp/attribute-rewrite.js';
import { resourceAttributes } from '../../../../protocol/otlp/plain.js';
import { decodeOfficial } from '../../../helpers/otlp-sink.js';
import { ProtoError } from '../../../../protocol/errors.js';

const attrs = (list: any[] | undefined) =>
  Object.fromEntries((list ?? []).map((kv: any) => [kv.key, kv.value.stringValue ?? kv.value]));

const metrics = () =>
  new MetricsEncoder({ gatewayId: 'gw', attributes: { site: 's1' } }).encode([
    {
      deviceId: 'a',
      readings: [
        { ts: 1732280000000, seq: 1, names: ['t', 'h'], values: [1, 2], attributes: ['serial', 'SN-1'] },
        { ts: 1732280001000, seq: 2, names: ['t'], values: [3], attributes: null },
      ],
    },
    { deviceId: 'b', readings: [{ ts: 1732280000000, seq: 1, names: ['t'], values: [9], attributes: ['k', 'v'] }] },
  ]);

test('hooks that change nothing leave the very same bytes', () => {
  const req = metrics();
  assert.equal(rewriteAttributes(Signal.METRICS, req, { resource: (_, a) => a, point: (_, __, a) => a }), req);
});

test('resource and point hooks see device and metric; only what they change is rewritten', () => {
  const seen: string[] = [];
  const out = rewriteAttributes(Signal.METRICS, metrics(), {
    resource: (id, a) => (id === 'a' ? [...a, 'dc', 'dc-1'] : a),
    point: (id, metric, a) => {
      seen.push(`${id}/${metric}`);
      return metric === 'h' ? ['tag', 'x'] : a;
    },
  });
  const req = decodeOfficial('metrics', out);
  const [a, b] = req.resourceMetrics;
  assert.deepEqual(attrs(a.resource.attributes), {
    'device.id': 'a',
    'service.name': 'iot-device',
    'otlp_edge.gateway.id': 'gw',
    site: 's1',
    dc: 'dc-1',
  });
  assert.equal(attrs(b.resource.attributes).dc, undefined);
  const byName = Object.fromEntries(a.scopeMetrics[0].metrics.map((m: any) => [m.name, m.gauge.dataPoints]));
  assert.deepEqual(attrs(byName.h[0].attributes), { tag: 'x' });
  assert.deepEqual(attrs(byName.t[0].attributes), { serial: 'SN-1' });
  assert.equal(byName.t.length, 2);
  assert.equal(Number(byName.t[1].asDouble ?? byName.t[1].asInt), 3);
  assert.ok(seen.includes('b/t') && seen.includes('a/h'));
});

test('log hooks change attributes and bodies; rewriteResource on a lone Resource', () => {
  const logs = new LogsEncoder({ gatewayId: 'gw' }).encode([
    {
      deviceId: 'a',
      events: [
        { ts: 1732280000000, severityNumber: 17, severityText: 'error', body: { msg: 'hi' }, attributes: ['n', 1] },
      ],
    },
  ]);
  const out = rewriteAttributes(Signal.LOGS, logs, {
    log: (_, rec) => ({ attrs: [...rec.attrs, 'extra', true], body: 'replaced' }),
  });
  const rec = decodeOfficial('logs', out).resourceLogs[0].scopeLogs[0].logRecords[0];
  assert.equal(rec.body.stringValue, 'replaced');
  assert.equal(rec.severityNumber, 17);
  assert.equal(Number(attrs(rec.attributes).n.intValue), 1, 'an integer stays an integer');
  assert.equal(attrs(rec.attributes).extra.boolValue, true);
  const resource = Uint8Array.from([0x0a, 0x0b, 0x0a, 0x01, 0x6b, 0x12, 0x06, 0x0a, 0x04, 0x76, 0x61, 0x6c, 0x31]);
  assert.deepEqual(resourceAttributes(rewriteResource(resource, (a) => [...a, 'x', 'y'])), { k: 'val1', x: 'y' });
  assert.equal(
    rewriteResource(resource, (a) => a),
    resource,
  );
  assert.throws(
    () => rewriteAttributes(Signal.LOGS, logs.subarray(0, logs.length - 5), { log: (_, r) => r }),
    ProtoError,
  );
});
