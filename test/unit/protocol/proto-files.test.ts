import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import protobuf from 'protobufjs';
import { loadProtos, protoDir } from '../../helpers/protos.js';

function protoFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? protoFiles(p) : n.endsWith('.proto') ? [relative(protoDir, p)] : [];
  });
}

test('every .proto file parses and resolves', () => {
  const files = protoFiles(protoDir);
  assert.ok(files.length >= 8, files.join(', '));
  for (const f of files) loadProtos(f);
});

test('OTLP field numbers are the specification\'s', () => {
  const root = loadProtos('opentelemetry/proto/collector/metrics/v1/metrics_service.proto', 'opentelemetry/proto/collector/logs/v1/logs_service.proto');
  const id = (type: string, field: string) => root.lookupType(type).fields[field].id;
  const pins: [string, string, number][] = [
    ['opentelemetry.proto.metrics.v1.NumberDataPoint', 'asInt', 6],
    ['opentelemetry.proto.metrics.v1.NumberDataPoint', 'asDouble', 4],
    ['opentelemetry.proto.metrics.v1.NumberDataPoint', 'timeUnixNano', 3],
    ['opentelemetry.proto.metrics.v1.NumberDataPoint', 'attributes', 7],
    ['opentelemetry.proto.metrics.v1.Metric', 'gauge', 5],
    ['opentelemetry.proto.metrics.v1.Metric', 'sum', 7],
    ['opentelemetry.proto.metrics.v1.Metric', 'histogram', 9],
    ['opentelemetry.proto.metrics.v1.Metric', 'exponentialHistogram', 10],
    ['opentelemetry.proto.metrics.v1.Metric', 'summary', 11],
    ['opentelemetry.proto.metrics.v1.HistogramDataPoint', 'attributes', 9],
    ['opentelemetry.proto.metrics.v1.HistogramDataPoint', 'bucketCounts', 6],
    ['opentelemetry.proto.metrics.v1.ExponentialHistogramDataPoint', 'zeroThreshold', 14],
    ['opentelemetry.proto.metrics.v1.ResourceMetrics', 'scopeMetrics', 2],
    ['opentelemetry.proto.logs.v1.LogRecord', 'body', 5],
    ['opentelemetry.proto.logs.v1.LogRecord', 'observedTimeUnixNano', 11],
    ['opentelemetry.proto.logs.v1.LogRecord', 'eventName', 12],
    ['opentelemetry.proto.common.v1.AnyValue', 'kvlistValue', 6],
    ['opentelemetry.proto.common.v1.AnyValue', 'bytesValue', 7],
  ];
  for (const [type, field, n] of pins) assert.equal(id(type, field), n, `${type}.${field}`);
  assert.equal(root.lookupType('opentelemetry.proto.metrics.v1.NumberDataPoint').fields.asInt.type, 'sfixed64');
  assert.equal(root.lookupType('opentelemetry.proto.metrics.v1.NumberDataPoint').fields.timeUnixNano.type, 'fixed64');
});

test('the uplink and peer services have their methods', () => {
  const root = loadProtos('uplink.proto', 'peer.proto');
  const uplink = root.lookup('otlp_edge.uplink.v1.Uplink') as protobuf.Service;
  assert.deepEqual(Object.keys(uplink.methods).sort(), ['GetRing', 'Send']);
  const peer = root.lookup('otlp_edge.peer.v1.Peer') as protobuf.Service;
  assert.deepEqual(Object.keys(peer.methods).sort(), ['Forward', 'Handoff', 'Probe']);
  assert.equal(peer.methods.Forward.responseType, 'otlp_edge.uplink.v1.UplinkAck');
});
