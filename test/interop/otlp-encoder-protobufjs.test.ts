import { reading } from '../helpers/readings.js';
import { Compression } from '../../protocol/compression.js';
import { Signal } from '../../protocol/otlp/signal.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsEncoder } from '../../protocol/otlp/metrics-encoder.js';
import { LogsEncoder } from '../../protocol/otlp/logs-encoder.js';
import { decodeLogsRequest, decodeMetricsRequest } from '../../protocol/otlp/decode.js';
import {
  AckStatus,
  decodeFrameAck,
  decodeRingInfo,
  decodeUplinkAck,
  decodeUplinkBatch,
  decodeUplinkFrame,
  encodeFrameAck,
  encodeRingInfo,
  encodeUplinkAck,
  encodeUplinkBatch,
  encodeUplinkFrame,
} from '../../protocol/uplink/messages.js';
import type { DeviceEvent } from '../../protocol/payload/types.js';
import { VERSION } from '../../protocol/version.js';
import { loadProtos, toObjectOptions } from '../helpers/protos.js';

// Our hand-written encoders, read back by an independent decoder: protobufjs reflection over protocol/proto/*.proto
// (field numbers pinned to the spec by test/unit/protocol/proto-files.test.ts). Then our own decoder must give the
// same OTLP/JSON view as protobufjs's toObject.

const root = loadProtos(
  'opentelemetry/proto/collector/metrics/v1/metrics_service.proto',
  'opentelemetry/proto/collector/logs/v1/logs_service.proto',
  'uplink.proto',
);
const MetricsRequest = root.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest');
const LogsRequest = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');

type Obj = Record<string, any>;
const str = (s: string) => ({ stringValue: s });
const kv = (key: string, value: Obj) => ({ key, value });

/** protobufjs's view: 64-bit integers as decimal strings, enums as numbers, bytes as base64, absent fields left out. */
const viaProtobufjs = (type: typeof MetricsRequest, bytes: Uint8Array): Obj =>
  type.toObject(type.decode(bytes), toObjectOptions);

/** Our decoder always writes repeated fields (as `[]` when empty); protobufjs's toObject leaves empty ones out. */
function withoutEmptyArrays(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutEmptyArrays);
  if (v === null || typeof v !== 'object') return v;
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) {
    if (x === undefined || (Array.isArray(x) && x.length === 0)) continue;
    out[k] = withoutEmptyArrays(x);
  }
  return out;
}

const resourceOf = (deviceId: string) => ({
  attributes: [
    kv('device.id', str(deviceId)),
    kv('service.name', str('boilers')),
    kv('otlp_edge.gateway.id', str('gw-9')),
    kv('site', str('plant-7')),
    kv('line', str('2')),
  ],
});
const scope = { name: 'otlp-edge-agent', version: VERSION };

test('metrics encoder output, decoded by protobufjs from the .proto files, is the documented OTLP mapping field for field', () => {
  const enc = new MetricsEncoder({
    gatewayId: 'gw-9',
    attributes: { site: 'plant-7', line: '2' },
    serviceName: 'boilers',
    counters: ['pulses'],
  });
  const bytes = enc.encode([
    {
      deviceId: 'dev-a',
      readings: [
        reading(1732280000123.456, 1, { temp: 21.5, pulses: 100 }, ['fw', '1.4.2', 'mode', 'eco']),
        reading(1732280001000, 2, { temp: -0.25, pulses: 103, neg: -7 }),
        // eslint-disable-next-line no-loss-of-precision -- the literal's rounding is what this case tests
        reading(1732280000999.9999, 3, { pulses: 104, temp: 0, big: 2 ** 60 }, ['fw', '1.4.3']), // rounds up to the next ms
      ],
    },
    {
      deviceId: 'dev-ü',
      readings: [
        reading(4102444800000.001, -1, { hum: 40 }), // year 2100, one microsecond past the ms
        reading(1000, -1, { hum: 40.5 }),
      ],
    },
    { deviceId: 'dev-empty', readings: [] }, // nothing to send: no ResourceMetrics
    {
      deviceId: 'dev-c',
      readings: [reading(1732280005000, 0, { door: 1 }), reading(1732280006000, 9_007_199_254_740_991, { door: 0 })],
    },
  ]);

  const point = (timeUnixNano: string, value: Obj, attributes?: Obj[]) => ({
    ...(attributes ? { attributes } : {}),
    timeUnixNano,
    ...value,
  });
  const T0 = '1732280000123456000';
  const T1 = '1732280001000000000';
  const T2 = '1732280001000000000'; // 1732280000999.9999 ms → nearest microsecond carries into the next ms
  const fw = (v: string) => [kv('fw', str(v))];
  const expected = {
    resourceMetrics: [
      {
        resource: resourceOf('dev-a'),
        scopeMetrics: [
          {
            scope,
            metrics: [
              {
                name: 'temp',
                gauge: {
                  dataPoints: [
                    point(T0, { asDouble: 21.5 }, [kv('fw', str('1.4.2')), kv('mode', str('eco'))]),
                    point(T1, { asDouble: -0.25 }),
                    point(T2, { asInt: '0' }, fw('1.4.3')),
                  ],
                },
              },
              {
                name: 'pulses',
                sum: {
                  aggregationTemporality: 2,
                  isMonotonic: true,
                  dataPoints: [
                    point(T0, { asInt: '100' }, [kv('fw', str('1.4.2')), kv('mode', str('eco'))]),
                    point(T1, { asInt: '103' }),
                    point(T2, { asInt: '104' }, fw('1.4.3')),
                  ],
                },
              },
              { name: 'neg', gauge: { dataPoints: [point(T1, { asInt: '-7' })] } },
              { name: 'big', gauge: { dataPoints: [point(T2, { asDouble: 2 ** 60 }, fw('1.4.3'))] } },
              {
                name: 'otlp_edge.device.seq',
                gauge: {
                  dataPoints: [
                    point(T0, { asInt: '1' }, [kv('fw', str('1.4.2')), kv('mode', str('eco'))]),
                    point(T1, { asInt: '2' }),
                    point(T2, { asInt: '3' }, fw('1.4.3')),
                  ],
                },
              },
            ],
          },
        ],
      },
      {
        resource: resourceOf('dev-ü'),
        scopeMetrics: [
          {
            scope,
            metrics: [
              {
                name: 'hum',
                gauge: {
                  dataPoints: [point('4102444800000001000', { asInt: '40' }), point('1000000000', { asDouble: 40.5 })],
                },
              },
            ],
          },
        ],
      },
      {
        resource: resourceOf('dev-c'),
        scopeMetrics: [
          {
            scope,
            metrics: [
              {
                name: 'door',
                gauge: {
                  dataPoints: [
                    point('1732280005000000000', { asInt: '1' }),
                    point('1732280006000000000', { asInt: '0' }),
                  ],
                },
              },
              {
                name: 'otlp_edge.device.seq',
                gauge: {
                  dataPoints: [
                    point('1732280005000000000', { asInt: '0' }),
                    point('1732280006000000000', { asInt: '9007199254740991' }),
                  ],
                },
              },
            ],
          },
        ],
      },
    ],
  };

  const decoded = viaProtobufjs(MetricsRequest, bytes);
  // Field by field first, so a failure names the part that broke, then the whole request.
  assert.equal(decoded.resourceMetrics.length, 3, 'one ResourceMetrics per device with readings');
  decoded.resourceMetrics.forEach((rm: Obj, i: number) => {
    const want = expected.resourceMetrics[i];
    assert.deepEqual(rm.resource, want.resource, `resource of ${want.resource.attributes[0].value.stringValue}`);
    assert.equal(rm.scopeMetrics.length, 1);
    assert.deepEqual(rm.scopeMetrics[0].scope, scope);
    assert.deepEqual(
      rm.scopeMetrics[0].metrics.map((m: Obj) => m.name),
      want.scopeMetrics[0].metrics.map((m) => m.name),
    );
    rm.scopeMetrics[0].metrics.forEach((m: Obj, j: number) =>
      assert.deepEqual(m, want.scopeMetrics[0].metrics[j], `metric ${m.name}`),
    );
  });
  assert.deepEqual(decoded, expected);

  // Our decoder's OTLP/JSON equals protobufjs's toObject of the same bytes.
  assert.deepEqual(withoutEmptyArrays(decodeMetricsRequest(bytes)), decoded);
});

test('the encoder keeps no state between batches: the same input encodes to the same bytes', () => {
  const enc = new MetricsEncoder({ gatewayId: 'gw-9', counters: ['pulses'] });
  const a = [{ deviceId: 'd1', readings: [reading(1732280000000, 1, { t: 1.5, pulses: 3 })] }];
  const b = [{ deviceId: 'd2', readings: [reading(1732280000000, -1, { x: 1, y: 2, z: 3 }, ['k', 'v'])] }];
  const first = enc.encode(a).slice();
  const decodedB = viaProtobufjs(MetricsRequest, enc.encode(b));
  assert.deepEqual(
    decodedB.resourceMetrics[0].scopeMetrics[0].metrics.map((m: Obj) => m.name),
    ['x', 'y', 'z'],
  );
  assert.deepEqual(enc.encode(a), first);
});

test('logs encoder output, decoded by protobufjs: severities, every body kind, typed attributes, times', () => {
  const event = (
    ts: number,
    severityNumber: number,
    severityText: string,
    body: DeviceEvent['body'],
    attributes: DeviceEvent['attributes'] = null,
  ): DeviceEvent => ({ ts, severityNumber, severityText, body, attributes });
  const enc = new LogsEncoder({
    gatewayId: 'gw-9',
    attributes: { site: 'plant-7', line: '2' },
    serviceName: 'boilers',
  });
  const bytes = enc.encode([
    {
      deviceId: 'dev-a',
      events: [
        event(1732280000000, 13, 'warn', 'door open', [
          'door',
          3,
          'ok',
          false,
          'ratio',
          0.5,
          'who',
          'x',
          'neg',
          -2,
          'list',
          [1, 'two'],
          'obj',
          { a: true },
        ]),
        event(1732280000001.5, 0, '', {
          code: 'E42',
          temps: [1, 2.5, -3],
          flags: [true, null],
          inner: { deep: { deeper: 'yes' } },
        }),
        event(1732280000002, 1, 'trace', [1, 2.25, 'x', false, [], {}]),
        event(1732280000003, 17, 'error', 42),
        event(1732280000004, 21, 'fatal', -0.125),
        event(1732280000005, 5, 'debug', true),
        event(1732280000006, 9, 'info', 2 ** 60),
        event(1732280000007, 9, 'info', ''),
      ],
    },
    { deviceId: 'dev-b', events: [event(1732280009000, 9, 'info', 'hello', ['n', 1])] },
    { deviceId: 'dev-none', events: [] },
  ]);

  const rec = (ms: string, severity: Obj, body: Obj, attributes?: Obj[]) => ({
    timeUnixNano: ms,
    observedTimeUnixNano: ms,
    ...severity,
    body,
    ...(attributes ? { attributes } : {}),
  });
  const expected = {
    resourceLogs: [
      {
        resource: resourceOf('dev-a'),
        scopeLogs: [
          {
            scope,
            logRecords: [
              rec('1732280000000000000', { severityNumber: 13, severityText: 'warn' }, str('door open'), [
                kv('door', { intValue: '3' }),
                kv('ok', { boolValue: false }),
                kv('ratio', { doubleValue: 0.5 }),
                kv('who', str('x')),
                kv('neg', { intValue: '-2' }),
                kv('list', { arrayValue: { values: [{ intValue: '1' }, str('two')] } }),
                kv('obj', { kvlistValue: { values: [kv('a', { boolValue: true })] } }),
              ]),
              rec(
                '1732280000001500000',
                {},
                {
                  kvlistValue: {
                    values: [
                      kv('code', str('E42')),
                      kv('temps', {
                        arrayValue: { values: [{ intValue: '1' }, { doubleValue: 2.5 }, { intValue: '-3' }] },
                      }),
                      kv('flags', { arrayValue: { values: [{ boolValue: true }, {}] } }),
                      kv('inner', {
                        kvlistValue: { values: [kv('deep', { kvlistValue: { values: [kv('deeper', str('yes'))] } })] },
                      }),
                    ],
                  },
                },
              ),
              rec(
                '1732280000002000000',
                { severityNumber: 1, severityText: 'trace' },
                {
                  arrayValue: {
                    values: [
                      { intValue: '1' },
                      { doubleValue: 2.25 },
                      str('x'),
                      { boolValue: false },
                      { arrayValue: {} },
                      { kvlistValue: {} },
                    ],
                  },
                },
              ),
              rec('1732280000003000000', { severityNumber: 17, severityText: 'error' }, { intValue: '42' }),
              rec('1732280000004000000', { severityNumber: 21, severityText: 'fatal' }, { doubleValue: -0.125 }),
              rec('1732280000005000000', { severityNumber: 5, severityText: 'debug' }, { boolValue: true }),
              rec('1732280000006000000', { severityNumber: 9, severityText: 'info' }, { doubleValue: 2 ** 60 }),
              rec('1732280000007000000', { severityNumber: 9, severityText: 'info' }, str('')),
            ],
          },
        ],
      },
      {
        resource: resourceOf('dev-b'),
        scopeLogs: [
          {
            scope,
            logRecords: [
              rec('1732280009000000000', { severityNumber: 9, severityText: 'info' }, str('hello'), [
                kv('n', { intValue: '1' }),
              ]),
            ],
          },
        ],
      },
    ],
  };

  const decoded = viaProtobufjs(LogsRequest, bytes);
  assert.equal(decoded.resourceLogs.length, 2, 'one ResourceLogs per device with events');
  const got = decoded.resourceLogs[0].scopeLogs[0].logRecords as Obj[];
  const want = expected.resourceLogs[0].scopeLogs[0].logRecords;
  assert.equal(got.length, want.length);
  got.forEach((r, i) => assert.deepEqual(r, want[i], `log record ${i}`));
  assert.deepEqual(decoded, expected);

  assert.deepEqual(withoutEmptyArrays(decodeLogsRequest(bytes)), withoutEmptyArrays(decoded));
});

test('hand-encoded uplink messages match uplink.proto, both ways', () => {
  const Batch = root.lookupType('otlp_edge.uplink.v1.UplinkBatch');
  const Ack = root.lookupType('otlp_edge.uplink.v1.UplinkAck');
  const Ring = root.lookupType('otlp_edge.uplink.v1.RingInfo');
  const payload = Buffer.from('compressed-otlp');

  const ours = encodeUplinkBatch({
    agentId: 'gw-1',
    seq: 2 ** 40 + 5,
    signal: Signal.LOGS,
    compression: Compression.ZSTD,
    payload,
    points: 5000,
    ringVersion: 4_000_000_000,
    ackedBelow: 2 ** 40 + 1,
    bufferId: 2 ** 47 + 3,
  });
  assert.deepEqual(Batch.toObject(Batch.decode(ours), toObjectOptions), {
    agentId: 'gw-1',
    seq: String(2 ** 40 + 5),
    signal: 2,
    compression: 1,
    payload: payload.toString('base64'),
    points: 5000,
    ringVersion: '4000000000',
    ackedBelow: String(2 ** 40 + 1),
    bufferId: String(2 ** 47 + 3),
  });
  const theirs = Batch.encode(
    Batch.fromObject({
      agentId: 'gw-2',
      seq: 9,
      signal: 1,
      compression: 2,
      payload,
      points: 3,
      ringVersion: 7,
      ackedBelow: 6,
      bufferId: 12345,
    }),
  ).finish();
  const back = decodeUplinkBatch(theirs);
  assert.deepEqual(
    { ...back, payload: Buffer.from(back.payload).toString() },
    {
      agentId: 'gw-2',
      seq: 9,
      signal: 1,
      compression: 2,
      payload: 'compressed-otlp',
      points: 3,
      ringVersion: 7,
      ackedBelow: 6,
      bufferId: 12345,
    },
  );

  assert.deepEqual(
    Ack.toObject(
      Ack.decode(encodeUplinkAck({ status: AckStatus.RETRY, retryAfterMs: 1500, reason: 'busy', ringVersion: 12 })),
      toObjectOptions,
    ),
    { status: 2, retryAfterMs: 1500, reason: 'busy', ringVersion: '12' },
  );
  assert.deepEqual(decodeUplinkAck(Ack.encode(Ack.fromObject({ status: 3, reason: 'unreadable payload' })).finish()), {
    status: AckStatus.REJECTED,
    retryAfterMs: 0,
    reason: 'unreadable payload',
    ringVersion: 0,
  });

  // The stream's frames and their acks.
  const Frame = root.lookupType('otlp_edge.uplink.v1.UplinkFrame');
  const FrameAckType = root.lookupType('otlp_edge.uplink.v1.FrameAck');
  const frame = {
    frame: 2 ** 33 + 1,
    payload,
    points: 16_000,
    segments: 37,
    ackedBelow: 2 ** 41,
    ringVersion: 9,
    agentId: 'gw-9',
    bufferId: 2 ** 46 + 7,
    format: 1,
  };
  assert.deepEqual(Frame.toObject(Frame.decode(encodeUplinkFrame(frame)), toObjectOptions), {
    ...frame,
    frame: String(frame.frame),
    payload: payload.toString('base64'),
    ackedBelow: String(frame.ackedBelow),
    ringVersion: '9',
    bufferId: String(frame.bufferId),
  });
  const frameBack = decodeUplinkFrame(Frame.encode(Frame.fromObject({ ...frame, agentId: '' })).finish());
  assert.deepEqual(
    { ...frameBack, payload: Buffer.from(frameBack.payload).toString() },
    {
      ...frame,
      agentId: '',
      payload: 'compressed-otlp',
    },
  );
  const fack = {
    frame: 5,
    status: AckStatus.OK,
    retryAfterMs: 0,
    reason: 'bad id',
    ringVersion: 3,
    rejected: [7, 2 ** 40],
  };
  assert.deepEqual(FrameAckType.toObject(FrameAckType.decode(encodeFrameAck(fack)), toObjectOptions), {
    frame: '5',
    status: 1,
    reason: 'bad id',
    ringVersion: '3',
    rejected: ['7', String(2 ** 40)],
  });
  assert.deepEqual(decodeFrameAck(FrameAckType.encode(FrameAckType.fromObject(fack)).finish()), fack);

  const info = {
    version: 3,
    vnodes: 128,
    members: [
      { id: 'agg-0', address: '10.0.0.1:4317', healthy: true },
      { id: 'agg-1', address: 'h:1', healthy: false },
    ],
  };
  assert.deepEqual(Ring.toObject(Ring.decode(encodeRingInfo(info)), toObjectOptions), {
    version: '3',
    vnodes: 128,
    members: [
      { id: 'agg-0', address: '10.0.0.1:4317', healthy: true },
      { id: 'agg-1', address: 'h:1' },
    ],
  });
  assert.deepEqual(decodeRingInfo(Ring.encode(Ring.fromObject(info)).finish()), info);
});
