import { reading } from '../../../helpers/readings.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsEncoder } from '../../../../protocol/otlp/metrics-encoder.js';
import { LogsEncoder } from '../../../../protocol/otlp/logs-encoder.js';
import { decodeOfficial } from '../../../helpers/otlp-sink.js';
import {
  resourceStringAttribute,
  withRequestResourceAttribute,
  withResourceAttribute,
} from '../../../../protocol/otlp/resource-attribute.js';
import { ProtoError } from '../../../../protocol/errors.js';

const attrs = (resource: any) =>
  Object.fromEntries((resource?.attributes ?? []).map((kv: any) => [kv.key, kv.value.stringValue]));

const metrics = (attributes: Record<string, string> = {}) =>
  new MetricsEncoder({ gatewayId: 'gw-1', attributes }).encode([
    { deviceId: 'dev-a', readings: [reading(1732280000000, 1, { temp: 20, hum: 40 })] },
    { deviceId: 'dev-b', readings: [reading(1732280001000, 2, { temp: 21.5 })] },
  ]);

test('every Resource of a metrics request gets the attribute; points, scopes and other attributes are untouched', () => {
  const before = decodeOfficial('metrics', metrics({ site: 'plant-7' }));
  const after = decodeOfficial(
    'metrics',
    withRequestResourceAttribute(metrics({ site: 'plant-7' }), 'tenant.id', 't1'),
  );
  assert.equal(after.resourceMetrics.length, 2);
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(attrs(after.resourceMetrics[i].resource), {
      ...attrs(before.resourceMetrics[i].resource),
      'tenant.id': 't1',
    });
    assert.deepEqual(after.resourceMetrics[i].scopeMetrics, before.resourceMetrics[i].scopeMetrics);
  }
});

test('a value the sender wrote is replaced, not doubled; null removes it', () => {
  const spoofed = metrics({ 'tenant.id': 'someone-else' });
  const stamped = decodeOfficial('metrics', withRequestResourceAttribute(spoofed, 'tenant.id', 't1'));
  const keys = stamped.resourceMetrics[0].resource.attributes.map((kv: { key: string }) => kv.key);
  assert.equal(keys.filter((k: string) => k === 'tenant.id').length, 1);
  assert.equal(attrs(stamped.resourceMetrics[0].resource)['tenant.id'], 't1');
  const removed = decodeOfficial('metrics', withRequestResourceAttribute(spoofed, 'tenant.id', null));
  assert.equal(attrs(removed.resourceMetrics[1].resource)['tenant.id'], undefined);
  assert.equal(attrs(removed.resourceMetrics[1].resource)['device.id'], 'dev-b');
});

test('a request that does not carry the attribute is returned as is when removing it', () => {
  const bytes = metrics();
  assert.equal(withRequestResourceAttribute(bytes, 'tenant.id', null), bytes);
});

test('logs requests: bodies kept, resources stamped', () => {
  const logs = new LogsEncoder({ gatewayId: 'gw-1' }).encode([
    {
      deviceId: 'dev-a',
      events: [
        { ts: 1732280000000, severityNumber: 17, severityText: 'error', body: 'tenant.id in a body', attributes: null },
      ],
    },
  ]);
  const out = decodeOfficial('logs', withRequestResourceAttribute(logs, 'tenant.id', 't2'));
  assert.equal(attrs(out.resourceLogs[0].resource)['tenant.id'], 't2');
  assert.equal(out.resourceLogs[0].scopeLogs[0].logRecords[0].body.stringValue, 'tenant.id in a body');
});

test('a ResourceMetrics without a Resource gains one; resourceStringAttribute reads it back', () => {
  // ResourceMetrics { scope_metrics: ScopeMetrics {} } — no resource field.
  const bare = Uint8Array.from([0x0a, 0x02, 0x12, 0x00]);
  const out = decodeOfficial('metrics', withRequestResourceAttribute(bare, 'tenant.id', 't3'));
  assert.equal(attrs(out.resourceMetrics[0].resource)['tenant.id'], 't3');
  assert.equal(out.resourceMetrics[0].scopeMetrics.length, 1);
});

test('withResourceAttribute on one Resource; unchanged bytes when the value is already there', () => {
  const stamped = withRequestResourceAttribute(metrics(), 'tenant.id', 't1');
  // Cut the first Resource out of the stamped request: field 1 → field 1.
  const resource = firstResource(stamped);
  assert.equal(resourceStringAttribute(resource, 'tenant.id'), 't1');
  assert.equal(resourceStringAttribute(resource, 'device.id'), 'dev-a');
  assert.equal(resourceStringAttribute(resource, 'site'), null);
  assert.equal(withResourceAttribute(resource, 'tenant.id', 't1'), resource);
  const moved = withResourceAttribute(resource, 'tenant.id', 't9');
  assert.equal(resourceStringAttribute(moved, 'tenant.id'), 't9');
  assert.equal(resourceStringAttribute(withResourceAttribute(moved, 'tenant.id', null), 'tenant.id'), null);
});

test('truncated bytes end in a ProtoError, never in a bad read', () => {
  const bytes = withRequestResourceAttribute(metrics(), 'tenant.id', 't1');
  assert.throws(() => withRequestResourceAttribute(bytes.subarray(0, bytes.length - 7), 'tenant.id', 't1'), ProtoError);
});

function firstResource(request: Uint8Array): Uint8Array {
  // tag 0x0a, varint length, then tag 0x0a, varint length of the Resource.
  let p = 1;
  while (request[p] & 0x80) p++;
  p++;
  assert.equal(request[p], 0x0a);
  p++;
  let len = 0;
  let mul = 1;
  while (request[p] & 0x80) {
    len += (request[p++] & 0x7f) * mul;
    mul *= 128;
  }
  len += request[p++] * mul;
  return request.subarray(p, p + len);
}
