import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import protobuf from 'protobufjs';
import { protoDir } from '../../helpers/protos.js';

function protoFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...protoFiles(p));
    else if (name.endsWith('.proto')) out.push(p);
  }
  return out.sort();
}

/** Loads .proto files the way protoc would: imports resolve against protocol/proto; field names kept as written. */
function load(files: string[]): protobuf.Root {
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => (isAbsolute(target) ? target : join(protoDir, target));
  r.loadSync(files, { keepCase: true });
  r.resolveAll(); // throws on any unresolved type
  return r;
}

const files = protoFiles(protoDir);
const all = load(files);

const fieldId = (type: string, field: string): number => {
  const f = all.lookupType(type).fields[field];
  assert.ok(f, `${type}.${field} exists`);
  return f.id;
};
const fieldType = (type: string, field: string): string => all.lookupType(type).fields[field].type;
/** An enum's name → number table as a plain object (protobufjs chains it to a prototype holding the reverse map). */
const enumValues = (name: string): Record<string, number> => ({ ...all.lookupEnum(name).values });

test('every .proto under protocol/proto parses and resolves on its own', () => {
  const rel = files.map((f) => relative(protoDir, f));
  for (const expected of [
    'opentelemetry/proto/common/v1/common.proto',
    'opentelemetry/proto/resource/v1/resource.proto',
    'opentelemetry/proto/metrics/v1/metrics.proto',
    'opentelemetry/proto/logs/v1/logs.proto',
    'opentelemetry/proto/collector/metrics/v1/metrics_service.proto',
    'opentelemetry/proto/collector/logs/v1/logs_service.proto',
    'uplink.proto',
    'peer.proto',
  ])
    assert.ok(rel.includes(expected), `${expected} is present`);
  for (const f of files) assert.doesNotThrow(() => load([f]), relative(protoDir, f));
});

test('the uplink service has Send, GetRing and Stream with the documented messages', () => {
  const svc = all.lookupService('otlp_edge.uplink.v1.Uplink');
  assert.deepEqual(Object.keys(svc.methods).sort(), ['GetRing', 'Send', 'Stream']);
  assert.equal(svc.methods.Stream.requestStream, true);
  assert.equal(svc.methods.Stream.responseStream, true);
  assert.equal(svc.methods.Stream.resolvedRequestType!.fullName, '.otlp_edge.uplink.v1.UplinkFrame');
  assert.equal(svc.methods.Stream.resolvedResponseType!.fullName, '.otlp_edge.uplink.v1.FrameAck');
  assert.equal(svc.methods.Send.resolvedRequestType!.fullName, '.otlp_edge.uplink.v1.UplinkBatch');
  assert.equal(svc.methods.Send.resolvedResponseType!.fullName, '.otlp_edge.uplink.v1.UplinkAck');
  assert.equal(svc.methods.GetRing.resolvedRequestType!.fullName, '.otlp_edge.uplink.v1.RingRequest');
  assert.equal(svc.methods.GetRing.resolvedResponseType!.fullName, '.otlp_edge.uplink.v1.RingInfo');

  const ids = (t: string) =>
    Object.fromEntries(Object.values(all.lookupType(t).fields).map((f) => [f.name, [f.id, f.type]]));
  assert.deepEqual(ids('otlp_edge.uplink.v1.UplinkBatch'), {
    agent_id: [1, 'string'],
    seq: [2, 'uint64'],
    signal: [3, 'Signal'],
    compression: [4, 'Compression'],
    payload: [5, 'bytes'],
    points: [6, 'uint32'],
    ring_version: [7, 'uint64'],
    acked_below: [8, 'uint64'],
    buffer_id: [9, 'uint64'],
  });
  assert.deepEqual(ids('otlp_edge.uplink.v1.UplinkFrame'), {
    frame: [1, 'uint64'],
    payload: [2, 'bytes'],
    points: [3, 'uint32'],
    segments: [4, 'uint32'],
    acked_below: [5, 'uint64'],
    ring_version: [6, 'uint64'],
    agent_id: [7, 'string'],
    buffer_id: [8, 'uint64'],
    format: [9, 'uint32'],
  });
  assert.deepEqual(ids('otlp_edge.uplink.v1.FrameAck'), {
    frame: [1, 'uint64'],
    status: [2, 'AckStatus'],
    retry_after_ms: [3, 'uint32'],
    reason: [4, 'string'],
    ring_version: [5, 'uint64'],
    rejected: [6, 'uint64'],
  });
  assert.deepEqual(ids('otlp_edge.uplink.v1.UplinkAck'), {
    status: [1, 'AckStatus'],
    retry_after_ms: [2, 'uint32'],
    reason: [3, 'string'],
    ring_version: [4, 'uint64'],
  });
  assert.deepEqual(ids('otlp_edge.uplink.v1.RingInfo'), {
    version: [1, 'uint64'],
    vnodes: [2, 'uint32'],
    members: [3, 'RingMember'],
  });
  assert.deepEqual(ids('otlp_edge.uplink.v1.RingMember'), {
    id: [1, 'string'],
    address: [2, 'string'],
    healthy: [3, 'bool'],
  });
  assert.deepEqual(enumValues('otlp_edge.uplink.v1.Signal'), {
    SIGNAL_UNSPECIFIED: 0,
    SIGNAL_METRICS: 1,
    SIGNAL_LOGS: 2,
    SIGNAL_TRACES: 3,
  });
  assert.deepEqual(enumValues('otlp_edge.uplink.v1.Compression'), {
    COMPRESSION_NONE: 0,
    COMPRESSION_ZSTD: 1,
    COMPRESSION_GZIP: 2,
  });
  assert.deepEqual(enumValues('otlp_edge.uplink.v1.AckStatus'), {
    ACK_STATUS_UNSPECIFIED: 0,
    ACK_OK: 1,
    ACK_RETRY: 2,
    ACK_REJECTED: 3,
  });
});

test('the peer service forwards with an UplinkAck reply and has probe, handoff, API proxy, device deletion and live-stream methods', () => {
  const svc = all.lookupService('otlp_edge.peer.v1.Peer');
  assert.deepEqual(Object.keys(svc.methods).sort(), [
    'DeleteDevice',
    'Forward',
    'GetAlerts',
    'GetDevice',
    'GetDevices',
    'GetEvents',
    'GetSeries',
    'GetSummary',
    'Handoff',
    'Probe',
    'Subscribe',
  ]);
  assert.equal(svc.methods.Subscribe.responseStream, true, 'Subscribe streams LiveMessages');
  assert.equal(svc.methods.DeleteDevice.resolvedResponseType!.fullName, '.otlp_edge.peer.v1.DeleteDeviceReply');
  assert.equal(svc.methods.Forward.resolvedResponseType!.fullName, '.otlp_edge.uplink.v1.UplinkAck');
  assert.equal(svc.methods.Probe.resolvedRequestType!.fullName, '.otlp_edge.peer.v1.ProbeRequest');
  assert.equal(svc.methods.Handoff.resolvedResponseType!.fullName, '.otlp_edge.peer.v1.HandoffReply');
  const fwd = all.lookupType('otlp_edge.peer.v1.ForwardRequest');
  // The forward shares the uplink's enums rather than redefining them.
  assert.equal(fwd.fields.signal.resolvedType!.fullName, '.otlp_edge.uplink.v1.Signal');
  assert.equal(fwd.fields.compression.resolvedType!.fullName, '.otlp_edge.uplink.v1.Compression');
  for (const f of [
    'origin_agent_id',
    'origin_seq',
    'part',
    'from_node',
    'payload',
    'points',
    'ring_version',
    'device_set_hash',
    'origin_acked_below',
    'origin_buffer_id',
  ]) {
    assert.ok(fwd.fields[f], `ForwardRequest.${f}`);
  }
  assert.equal(fieldType('otlp_edge.peer.v1.DeviceState', 'device_id'), 'string');
  assert.equal(fieldId('otlp_edge.peer.v1.DeviceState', 'device_id'), 1);
  assert.equal(fieldType('otlp_edge.peer.v1.DeviceState', 'state'), 'bytes');
  assert.equal(fieldId('otlp_edge.peer.v1.DeviceState', 'state'), 2);
});

test("OTLP field numbers and wire types are the specification's", () => {
  // [field, id, type]: a changed number or type would make our bytes unreadable to every other OTLP peer.
  const pinned: [string, string, number, string][] = [
    ['opentelemetry.proto.common.v1.AnyValue', 'string_value', 1, 'string'],
    ['opentelemetry.proto.common.v1.AnyValue', 'bool_value', 2, 'bool'],
    ['opentelemetry.proto.common.v1.AnyValue', 'int_value', 3, 'int64'],
    ['opentelemetry.proto.common.v1.AnyValue', 'double_value', 4, 'double'],
    ['opentelemetry.proto.common.v1.AnyValue', 'array_value', 5, 'ArrayValue'],
    ['opentelemetry.proto.common.v1.AnyValue', 'kvlist_value', 6, 'KeyValueList'],
    ['opentelemetry.proto.common.v1.AnyValue', 'bytes_value', 7, 'bytes'],
    ['opentelemetry.proto.common.v1.KeyValue', 'key', 1, 'string'],
    ['opentelemetry.proto.common.v1.KeyValue', 'value', 2, 'AnyValue'],
    ['opentelemetry.proto.common.v1.InstrumentationScope', 'name', 1, 'string'],
    ['opentelemetry.proto.common.v1.InstrumentationScope', 'version', 2, 'string'],
    ['opentelemetry.proto.common.v1.InstrumentationScope', 'attributes', 3, 'KeyValue'],
    ['opentelemetry.proto.resource.v1.Resource', 'attributes', 1, 'opentelemetry.proto.common.v1.KeyValue'],
    ['opentelemetry.proto.resource.v1.Resource', 'dropped_attributes_count', 2, 'uint32'],
    [
      'opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest',
      'resource_metrics',
      1,
      'opentelemetry.proto.metrics.v1.ResourceMetrics',
    ],
    ['opentelemetry.proto.collector.metrics.v1.ExportMetricsPartialSuccess', 'rejected_data_points', 1, 'int64'],
    [
      'opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest',
      'resource_logs',
      1,
      'opentelemetry.proto.logs.v1.ResourceLogs',
    ],
    ['opentelemetry.proto.collector.logs.v1.ExportLogsPartialSuccess', 'rejected_log_records', 1, 'int64'],
    ['opentelemetry.proto.metrics.v1.ResourceMetrics', 'resource', 1, 'opentelemetry.proto.resource.v1.Resource'],
    ['opentelemetry.proto.metrics.v1.ResourceMetrics', 'scope_metrics', 2, 'ScopeMetrics'],
    ['opentelemetry.proto.metrics.v1.ResourceMetrics', 'schema_url', 3, 'string'],
    ['opentelemetry.proto.metrics.v1.ScopeMetrics', 'scope', 1, 'opentelemetry.proto.common.v1.InstrumentationScope'],
    ['opentelemetry.proto.metrics.v1.ScopeMetrics', 'metrics', 2, 'Metric'],
    ['opentelemetry.proto.metrics.v1.Metric', 'name', 1, 'string'],
    ['opentelemetry.proto.metrics.v1.Metric', 'description', 2, 'string'],
    ['opentelemetry.proto.metrics.v1.Metric', 'unit', 3, 'string'],
    ['opentelemetry.proto.metrics.v1.Metric', 'gauge', 5, 'Gauge'],
    ['opentelemetry.proto.metrics.v1.Metric', 'sum', 7, 'Sum'],
    ['opentelemetry.proto.metrics.v1.Metric', 'histogram', 9, 'Histogram'],
    ['opentelemetry.proto.metrics.v1.Metric', 'exponential_histogram', 10, 'ExponentialHistogram'],
    ['opentelemetry.proto.metrics.v1.Metric', 'summary', 11, 'Summary'],
    ['opentelemetry.proto.metrics.v1.Metric', 'metadata', 12, 'opentelemetry.proto.common.v1.KeyValue'],
    ['opentelemetry.proto.metrics.v1.Sum', 'aggregation_temporality', 2, 'AggregationTemporality'],
    ['opentelemetry.proto.metrics.v1.Sum', 'is_monotonic', 3, 'bool'],
    ['opentelemetry.proto.metrics.v1.NumberDataPoint', 'attributes', 7, 'opentelemetry.proto.common.v1.KeyValue'],
    ['opentelemetry.proto.metrics.v1.NumberDataPoint', 'start_time_unix_nano', 2, 'fixed64'],
    ['opentelemetry.proto.metrics.v1.NumberDataPoint', 'time_unix_nano', 3, 'fixed64'],
    ['opentelemetry.proto.metrics.v1.NumberDataPoint', 'as_double', 4, 'double'],
    ['opentelemetry.proto.metrics.v1.NumberDataPoint', 'as_int', 6, 'sfixed64'],
    ['opentelemetry.proto.metrics.v1.NumberDataPoint', 'exemplars', 5, 'Exemplar'],
    ['opentelemetry.proto.metrics.v1.NumberDataPoint', 'flags', 8, 'uint32'],
    ['opentelemetry.proto.metrics.v1.HistogramDataPoint', 'attributes', 9, 'opentelemetry.proto.common.v1.KeyValue'],
    ['opentelemetry.proto.metrics.v1.HistogramDataPoint', 'count', 4, 'fixed64'],
    ['opentelemetry.proto.metrics.v1.HistogramDataPoint', 'sum', 5, 'double'],
    ['opentelemetry.proto.metrics.v1.HistogramDataPoint', 'bucket_counts', 6, 'fixed64'],
    ['opentelemetry.proto.metrics.v1.HistogramDataPoint', 'explicit_bounds', 7, 'double'],
    ['opentelemetry.proto.metrics.v1.HistogramDataPoint', 'flags', 10, 'uint32'],
    ['opentelemetry.proto.metrics.v1.HistogramDataPoint', 'min', 11, 'double'],
    ['opentelemetry.proto.metrics.v1.HistogramDataPoint', 'max', 12, 'double'],
    [
      'opentelemetry.proto.metrics.v1.ExponentialHistogramDataPoint',
      'attributes',
      1,
      'opentelemetry.proto.common.v1.KeyValue',
    ],
    ['opentelemetry.proto.metrics.v1.ExponentialHistogramDataPoint', 'scale', 6, 'sint32'],
    ['opentelemetry.proto.metrics.v1.ExponentialHistogramDataPoint', 'zero_count', 7, 'fixed64'],
    ['opentelemetry.proto.metrics.v1.ExponentialHistogramDataPoint', 'positive', 8, 'Buckets'],
    ['opentelemetry.proto.metrics.v1.ExponentialHistogramDataPoint', 'negative', 9, 'Buckets'],
    ['opentelemetry.proto.metrics.v1.ExponentialHistogramDataPoint', 'exemplars', 11, 'Exemplar'],
    ['opentelemetry.proto.metrics.v1.ExponentialHistogramDataPoint', 'zero_threshold', 14, 'double'],
    ['opentelemetry.proto.metrics.v1.ExponentialHistogramDataPoint.Buckets', 'offset', 1, 'sint32'],
    ['opentelemetry.proto.metrics.v1.ExponentialHistogramDataPoint.Buckets', 'bucket_counts', 2, 'uint64'],
    ['opentelemetry.proto.metrics.v1.SummaryDataPoint', 'attributes', 7, 'opentelemetry.proto.common.v1.KeyValue'],
    ['opentelemetry.proto.metrics.v1.SummaryDataPoint', 'quantile_values', 6, 'ValueAtQuantile'],
    ['opentelemetry.proto.metrics.v1.SummaryDataPoint', 'flags', 8, 'uint32'],
    ['opentelemetry.proto.metrics.v1.Exemplar', 'filtered_attributes', 7, 'opentelemetry.proto.common.v1.KeyValue'],
    ['opentelemetry.proto.metrics.v1.Exemplar', 'time_unix_nano', 2, 'fixed64'],
    ['opentelemetry.proto.metrics.v1.Exemplar', 'as_double', 3, 'double'],
    ['opentelemetry.proto.metrics.v1.Exemplar', 'as_int', 6, 'sfixed64'],
    ['opentelemetry.proto.metrics.v1.Exemplar', 'span_id', 4, 'bytes'],
    ['opentelemetry.proto.metrics.v1.Exemplar', 'trace_id', 5, 'bytes'],
    ['opentelemetry.proto.logs.v1.ResourceLogs', 'scope_logs', 2, 'ScopeLogs'],
    ['opentelemetry.proto.logs.v1.ScopeLogs', 'log_records', 2, 'LogRecord'],
    ['opentelemetry.proto.logs.v1.LogRecord', 'time_unix_nano', 1, 'fixed64'],
    ['opentelemetry.proto.logs.v1.LogRecord', 'severity_number', 2, 'SeverityNumber'],
    ['opentelemetry.proto.logs.v1.LogRecord', 'severity_text', 3, 'string'],
    ['opentelemetry.proto.logs.v1.LogRecord', 'body', 5, 'opentelemetry.proto.common.v1.AnyValue'],
    ['opentelemetry.proto.logs.v1.LogRecord', 'attributes', 6, 'opentelemetry.proto.common.v1.KeyValue'],
    ['opentelemetry.proto.logs.v1.LogRecord', 'dropped_attributes_count', 7, 'uint32'],
    ['opentelemetry.proto.logs.v1.LogRecord', 'flags', 8, 'fixed32'],
    ['opentelemetry.proto.logs.v1.LogRecord', 'trace_id', 9, 'bytes'],
    ['opentelemetry.proto.logs.v1.LogRecord', 'span_id', 10, 'bytes'],
    ['opentelemetry.proto.logs.v1.LogRecord', 'observed_time_unix_nano', 11, 'fixed64'],
    ['opentelemetry.proto.logs.v1.LogRecord', 'event_name', 12, 'string'],
  ];
  for (const [type, field, id, t] of pinned) {
    assert.equal(fieldId(type, field), id, `${type}.${field} = ${id}`);
    assert.equal(fieldType(type, field), t, `${type}.${field} is ${t}`);
  }
  // Oneofs group what the spec groups: a data point holds one value, a metric one kind of data.
  assert.deepEqual(all.lookupType('opentelemetry.proto.metrics.v1.NumberDataPoint').oneofs.value.oneof, [
    'as_double',
    'as_int',
  ]);
  assert.deepEqual(all.lookupType('opentelemetry.proto.metrics.v1.Metric').oneofs.data.oneof, [
    'gauge',
    'sum',
    'histogram',
    'exponential_histogram',
    'summary',
  ]);
  assert.equal(all.lookupType('opentelemetry.proto.common.v1.AnyValue').oneofs.value.oneof.length, 7);
  assert.deepEqual(enumValues('opentelemetry.proto.metrics.v1.AggregationTemporality'), {
    AGGREGATION_TEMPORALITY_UNSPECIFIED: 0,
    AGGREGATION_TEMPORALITY_DELTA: 1,
    AGGREGATION_TEMPORALITY_CUMULATIVE: 2,
  });
  const sev = enumValues('opentelemetry.proto.logs.v1.SeverityNumber');
  assert.deepEqual(
    [
      sev.SEVERITY_NUMBER_TRACE,
      sev.SEVERITY_NUMBER_DEBUG,
      sev.SEVERITY_NUMBER_INFO,
      sev.SEVERITY_NUMBER_WARN,
      sev.SEVERITY_NUMBER_ERROR,
      sev.SEVERITY_NUMBER_FATAL,
      sev.SEVERITY_NUMBER_FATAL4,
    ],
    [1, 5, 9, 13, 17, 21, 24],
  );
  // Reserved numbers the spec retired must stay unused.
  assert.ok(all.lookupType('opentelemetry.proto.metrics.v1.Metric').isReservedId(4));
  assert.ok(all.lookupType('opentelemetry.proto.metrics.v1.NumberDataPoint').isReservedId(1));
  assert.ok(all.lookupType('opentelemetry.proto.logs.v1.LogRecord').isReservedId(4));
});

test('the OTLP collector services export the request types', () => {
  const m = all.lookupService('opentelemetry.proto.collector.metrics.v1.MetricsService').methods.Export;
  assert.equal(
    m.resolvedRequestType!.fullName,
    '.opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest',
  );
  assert.equal(
    m.resolvedResponseType!.fullName,
    '.opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceResponse',
  );
  const l = all.lookupService('opentelemetry.proto.collector.logs.v1.LogsService').methods.Export;
  assert.equal(l.resolvedRequestType!.fullName, '.opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');
  assert.equal(l.resolvedResponseType!.fullName, '.opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse');
});

test('trace.proto and trace_service.proto match the official opentelemetry-proto (as compiled by OpenTelemetry JS)', async () => {
  const { createRequire } = await import('node:module');
  const official = createRequire(import.meta.url)('@opentelemetry/otlp-transformer/build/src/generated/root.js');
  const Theirs = official.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
  const Ours = all.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
  const id = (n: number, len: number) => Buffer.alloc(len, n);
  const kv = (key: string, v: string) => ({ key, value: { string_value: v } });
  const span = {
    trace_id: id(1, 16),
    span_id: id(2, 8),
    trace_state: 'k=v',
    parent_span_id: id(3, 8),
    flags: 257,
    name: 'op',
    kind: 3,
    start_time_unix_nano: '1700000000000000001',
    end_time_unix_nano: '1700000000000000002',
    attributes: [kv('a', 'b')],
    dropped_attributes_count: 4,
    events: [{ time_unix_nano: 5, name: 'ev', attributes: [kv('c', 'd')], dropped_attributes_count: 6 }],
    dropped_events_count: 7,
    links: [
      {
        trace_id: id(8, 16),
        span_id: id(9, 8),
        trace_state: 'x',
        attributes: [kv('e', 'f')],
        dropped_attributes_count: 10,
        flags: 11,
      },
    ],
    dropped_links_count: 12,
    status: { message: 'bad', code: 2 },
  };
  const req = {
    resource_spans: [
      {
        resource: { attributes: [kv('service.name', 's')] },
        scope_spans: [{ scope: { name: 'sc' }, spans: [span], schema_url: 'u1' }],
        schema_url: 'u2',
      },
    ],
  };
  const bytes = Ours.encode(Ours.fromObject(req)).finish();
  const back = Theirs.toObject(Theirs.decode(bytes), { longs: String, enums: Number, bytes: String });
  const s = back.resourceSpans[0].scopeSpans[0].spans[0];
  assert.equal(back.resourceSpans[0].schemaUrl, 'u2');
  assert.equal(back.resourceSpans[0].scopeSpans[0].schemaUrl, 'u1');
  assert.deepEqual(
    [
      s.traceId,
      s.spanId,
      s.parentSpanId,
      s.traceState,
      s.flags,
      s.name,
      s.kind,
      s.startTimeUnixNano,
      s.endTimeUnixNano,
    ],
    [
      id(1, 16).toString('base64'),
      id(2, 8).toString('base64'),
      id(3, 8).toString('base64'),
      'k=v',
      257,
      'op',
      3,
      '1700000000000000001',
      '1700000000000000002',
    ],
  );
  assert.equal(s.attributes[0].value.stringValue, 'b');
  assert.equal(s.droppedAttributesCount, 4);
  assert.deepEqual([s.events[0].timeUnixNano, s.events[0].name, s.events[0].droppedAttributesCount], ['5', 'ev', 6]);
  assert.equal(s.droppedEventsCount, 7);
  assert.deepEqual(
    [s.links[0].traceState, s.links[0].attributes[0].key, s.links[0].droppedAttributesCount, s.links[0].flags],
    ['x', 'e', 10, 11],
  );
  assert.equal(s.droppedLinksCount, 12);
  assert.deepEqual([s.status.message, s.status.code], ['bad', 2]);
});
