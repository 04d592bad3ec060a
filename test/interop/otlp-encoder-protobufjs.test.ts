import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsEncoder } from '../../protocol/otlp/metrics-encoder.js';
import { LogsEncoder } from '../../protocol/otlp/logs-encoder.js';
import { decodeLogsRequest, decodeMetricsRequest } from '../../protocol/otlp/decode.js';
import { encodeUplinkAck, encodeUplinkBatch, decodeUplinkBatch, encodeRingInfo, AckStatus, UplinkCompression, UplinkSignal } from '../../protocol/uplink/messages.js';
import { VERSION } from '../../protocol/version.js';
import { loadProtos, toObjectOptions } from '../helpers/protos.js';

const root = loadProtos('opentelemetry/proto/collector/metrics/v1/metrics_service.proto', 'opentelemetry/proto/collector/logs/v1/logs_service.proto', 'uplink.proto');
const MetricsReq = root.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest');
const LogsReq = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');

type Obj = Record<string, any>;
const kv = (list: Obj[] | undefined) => Object.fromEntries((list ?? []).map((a) => [a.key, a.value]));

test('our metrics encoder, decoded independently by protobufjs from the .proto files: every field as mapped', () => {
  const enc = new MetricsEncoder({ gatewayId: 'gw-9', attributes: { site: 'plant-7' }, serviceName: 'boilers', counters: ['pulses'] });
  const bytes = enc.encode([
    { deviceId: 'dev-a', readings: [
      { ts: 1732280000123.456, seq: 1, names: ['temp', 'pulses'], values: [21.5, 100], attributes: ['fw', '1.4.2'] },
      { ts: 1732280001000, seq: 2, names: ['temp', 'pulses', 'neg'], values: [-0.25, 103, -7], attributes: null },
    ] },
    { deviceId: 'dev-ü', readings: [{ ts: 1732280002000, seq: -1, names: ['hum'], values: [40], attributes: null }] },
  ]);
  const msg = MetricsReq.toObject(MetricsReq.decode(bytes), toObjectOptions) as Obj;
  assert.equal(msg.resourceMetrics.length, 2);
  const [a, b] = msg.resourceMetrics;
  assert.deepEqual(kv(a.resource.attributes), {
    'device.id': { stringValue: 'dev-a' }, 'service.name': { stringValue: 'boilers' }, 'otlp_edge.gateway.id': { stringValue: 'gw-9' }, site: { stringValue: 'plant-7' },
  });
  assert.equal(kv(b.resource.attributes)['device.id'].stringValue, 'dev-ü');
  assert.deepEqual(a.scopeMetrics[0].scope, { name: 'otlp-edge-agent', version: VERSION });
  const metrics = a.scopeMetrics[0].metrics as Obj[];
  assert.deepEqual(metrics.map((m) => m.name), ['temp', 'pulses', 'neg', 'otlp_edge.device.seq']);
  const [temp, pulses, neg, seq] = metrics;
  assert.deepEqual(temp.gauge.dataPoints, [
    { attributes: [{ key: 'fw', value: { stringValue: '1.4.2' } }], timeUnixNano: '1732280000123456000', asDouble: 21.5 },
    { timeUnixNano: '1732280001000000000', asDouble: -0.25 },
  ]);
  assert.equal(pulses.gauge, undefined);
  assert.equal(pulses.sum.aggregationTemporality, 2);
  assert.equal(pulses.sum.isMonotonic, true);
  assert.deepEqual(pulses.sum.dataPoints.map((p: Obj) => p.asInt), ['100', '103']);
  assert.deepEqual(neg.gauge.dataPoints, [{ timeUnixNano: '1732280001000000000', asInt: '-7' }]);
  assert.deepEqual(seq.gauge.dataPoints.map((p: Obj) => [p.timeUnixNano, p.asInt]), [['1732280000123456000', '1'], ['1732280001000000000', '2']]);
  assert.deepEqual(b.scopeMetrics[0].metrics.map((m: Obj) => m.name), ['hum'], 'no seq gauge without seq');

  // Our own decoder agrees with protobufjs where the shapes line up.
  const ours = decodeMetricsRequest(bytes);
  assert.deepEqual(ours.resourceMetrics[0].scopeMetrics[0].metrics[0].gauge!.dataPoints[0].timeUnixNano, '1732280000123456000');
  assert.equal(ours.resourceMetrics.length, msg.resourceMetrics.length);
});

test('our logs encoder, decoded independently by protobufjs: severities, bodies of every kind, attributes, times', () => {
  const enc = new LogsEncoder({ gatewayId: 'gw-9' });
  const bytes = enc.encode([{ deviceId: 'dev-a', events: [
    { ts: 1732280000000, severityNumber: 13, severityText: 'warn', body: 'door open', attributes: ['door', 3, 'ok', false, 'ratio', 0.5, 'who', 'x'] },
    { ts: 1732280000001.5, severityNumber: 0, severityText: '', body: { code: 'E42', temps: [1, 2.5, -3], flags: [true, null] }, attributes: null },
  ] }]);
  const msg = LogsReq.toObject(LogsReq.decode(bytes), toObjectOptions) as Obj;
  const [r1, r2] = msg.resourceLogs[0].scopeLogs[0].logRecords as Obj[];
  assert.equal(r1.timeUnixNano, '1732280000000000000');
  assert.equal(r1.observedTimeUnixNano, '1732280000000000000');
  assert.equal(r1.severityNumber, 13);
  assert.equal(r1.severityText, 'warn');
  assert.deepEqual(r1.body, { stringValue: 'door open' });
  assert.deepEqual(kv(r1.attributes), { door: { intValue: '3' }, ok: { boolValue: false }, ratio: { doubleValue: 0.5 }, who: { stringValue: 'x' } });
  assert.equal(r2.timeUnixNano, '1732280000001500000');
  assert.equal(r2.severityNumber, undefined);
  assert.deepEqual(r2.body, { kvlistValue: { values: [
    { key: 'code', value: { stringValue: 'E42' } },
    { key: 'temps', value: { arrayValue: { values: [{ intValue: '1' }, { doubleValue: 2.5 }, { intValue: '-3' }] } } },
    { key: 'flags', value: { arrayValue: { values: [{ boolValue: true }, {}] } } },
  ] } });
  assert.deepEqual(decodeLogsRequest(bytes).resourceLogs[0].scopeLogs[0].logRecords[1].body, r2.body);
});

test('hand-encoded uplink messages match uplink.proto, both ways', () => {
  const Batch = root.lookupType('otlp_edge.uplink.v1.UplinkBatch');
  const Ack = root.lookupType('otlp_edge.uplink.v1.UplinkAck');
  const Ring = root.lookupType('otlp_edge.uplink.v1.RingInfo');
  const payload = Buffer.from('compressed-otlp');
  const ours = encodeUplinkBatch({ agentId: 'gw-1', seq: 2 ** 40 + 5, signal: UplinkSignal.LOGS, compression: UplinkCompression.ZSTD, payload, points: 5000, ringVersion: 4_000_000_000 });
  assert.deepEqual(Batch.toObject(Batch.decode(ours), toObjectOptions), {
    agentId: 'gw-1', seq: String(2 ** 40 + 5), signal: 2, compression: 1, payload: payload.toString('base64'), points: 5000, ringVersion: '4000000000',
  });
  const theirs = Batch.encode(Batch.fromObject({ agentId: 'gw-2', seq: 9, signal: 1, compression: 2, payload, points: 3, ringVersion: 7 })).finish();
  const back = decodeUplinkBatch(theirs);
  assert.deepEqual({ ...back, payload: Buffer.from(back.payload).toString() }, { agentId: 'gw-2', seq: 9, signal: 1, compression: 2, payload: 'compressed-otlp', points: 3, ringVersion: 7 });
  assert.deepEqual(Ack.toObject(Ack.decode(encodeUplinkAck({ status: AckStatus.RETRY, retryAfterMs: 1500, reason: 'busy', ringVersion: 12 })), toObjectOptions), { status: 2, retryAfterMs: 1500, reason: 'busy', ringVersion: '12' });
  assert.deepEqual(Ring.toObject(Ring.decode(encodeRingInfo({ version: 3, vnodes: 128, members: [{ id: 'agg-0', address: '10.0.0.1:4317', healthy: true }, { id: 'agg-1', address: 'h:1', healthy: false }] })), toObjectOptions), {
    version: '3', vnodes: 128, members: [{ id: 'agg-0', address: '10.0.0.1:4317', healthy: true }, { id: 'agg-1', address: 'h:1' }],
  });
});
