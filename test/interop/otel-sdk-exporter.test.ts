import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { ValueType } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  AggregationType,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { decodeLogsRequest, decodeMetricsRequest } from '../../protocol/otlp/decode.js';
import type { MetricJson, NumberDataPointJson } from '../../protocol/otlp/json-types.js';
import { anyValue, attrs } from '../helpers/otlp-readings.js';

// The real OpenTelemetry JS SDK and its OTLP/HTTP protobuf exporters (opentelemetry-js 2.x / 0.208) send to a local
// listener; our decoder must read every field the SDK writes. The SDK encodes with its own generated protobuf code,
// so this is a peer we did not write.

interface Captured {
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** An OTLP/HTTP receiver on 127.0.0.1 that keeps every request (gunzipped) and answers an empty Export*Response. */
async function listener() {
  const requests: Captured[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      requests.push({ path: req.url ?? '', headers: req.headers, body });
      // An empty Export{Metrics,Logs}ServiceResponse: no partial_success, everything accepted.
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { requests, url, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const nowNs = () => BigInt(Date.now()) * 1_000_000n;
const DECIMAL = /^(0|[1-9][0-9]*)$/;

/** A nanosecond timestamp as OTLP/JSON writes it, inside [from, to]. */
function assertTime(v: string | undefined, from: bigint, to: bigint, what: string): bigint {
  assert.match(v ?? '', DECIMAL, `${what}: decimal-string nanoseconds`);
  const t = BigInt(v!);
  assert.ok(t >= from && t <= to, `${what}: ${t} within the test's window [${from}, ${to}]`);
  return t;
}

test('metrics from the OpenTelemetry JS SDK (OTLP/HTTP protobuf, gzip) read correctly with our decoder', async (t) => {
  const l = await listener();
  t.after(() => l.close());
  const before = nowNs();
  const provider = new MeterProvider({
    resource: resourceFromAttributes({
      'service.name': 'interop-svc',
      'device.id': 'sdk-dev-1',
      site: 'lab',
      floor: 3,
      indoor: true,
    }),
    views: [
      {
        instrumentName: 'payload.size',
        aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM, options: { maxSize: 160 } },
      },
    ],
    readers: [
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({
          url: `${l.url}/v1/metrics`,
          compression: 'gzip' as NonNullable<ConstructorParameters<typeof OTLPMetricExporter>[0]>['compression'],
          temporalityPreference: AggregationTemporality.CUMULATIVE,
        }),
        exportIntervalMillis: 60_000, // only the explicit flush below exports
      }),
    ],
  });
  const meter = provider.getMeter('interop-meter', '1.2.3');
  const gauge = meter.createGauge('room.temperature', { unit: 'Cel', description: 'room temperature' });
  gauge.record(21.5, { room: 'lab', floor: 2 });
  gauge.record(-4.25, { room: 'cold-store', floor: -1 });
  const pulses = meter.createCounter('pulses', { valueType: ValueType.INT });
  pulses.add(7, { line: 'a' });
  pulses.add(5, { line: 'a' });
  const depth = meter.createUpDownCounter('queue.depth', { valueType: ValueType.INT });
  depth.add(2);
  depth.add(-5);
  const latency = meter.createHistogram('latency', { unit: 'ms', advice: { explicitBucketBoundaries: [10, 100] } });
  for (const v of [5, 50, 500, 70]) latency.record(v, { route: '/x' });
  const size = meter.createHistogram('payload.size', { unit: 'By' });
  for (const v of [0.001, 0.5, 3, 3, 1000, 0]) size.record(v);

  await provider.forceFlush();
  const after = nowNs();
  await provider.shutdown();

  const sent = l.requests.filter((r) => r.path === '/v1/metrics');
  assert.ok(sent.length >= 1, 'the exporter posted to /v1/metrics');
  assert.equal(sent[0].headers['content-type'], 'application/x-protobuf');
  assert.equal(sent[0].headers['content-encoding'], 'gzip', 'the gzip path of the listener was taken');
  const req = decodeMetricsRequest(sent[0].body);

  assert.equal(req.resourceMetrics.length, 1);
  const rm = req.resourceMetrics[0];
  const ra = attrs(rm.resource!.attributes);
  assert.equal(ra['service.name'], 'interop-svc');
  assert.equal(ra['device.id'], 'sdk-dev-1');
  assert.equal(ra.site, 'lab');
  assert.equal(ra.floor, 3);
  assert.deepEqual(rm.resource!.attributes.find((a) => a.key === 'floor')!.value, { intValue: '3' });
  assert.equal(ra.indoor, true);
  assert.equal(rm.scopeMetrics.length, 1);
  const sm = rm.scopeMetrics[0];
  assert.deepEqual(sm.scope, { name: 'interop-meter', version: '1.2.3' });
  const byName = new Map<string, MetricJson>(sm.metrics.map((m) => [m.name, m]));
  assert.deepEqual([...byName.keys()].sort(), ['latency', 'payload.size', 'pulses', 'queue.depth', 'room.temperature']);

  const temp = byName.get('room.temperature')!;
  assert.equal(temp.unit, 'Cel');
  assert.equal(temp.description, 'room temperature');
  assert.equal(temp.sum, undefined);
  const byRoom = new Map<unknown, NumberDataPointJson>(
    temp.gauge!.dataPoints.map((p) => [attrs(p.attributes).room, p]),
  );
  assert.equal(byRoom.size, 2);
  assert.equal(byRoom.get('lab')!.asDouble, 21.5);
  assert.deepEqual(attrs(byRoom.get('lab')!.attributes), { room: 'lab', floor: 2 });
  assert.equal(byRoom.get('cold-store')!.asDouble, -4.25);
  assert.deepEqual(byRoom.get('cold-store')!.attributes.find((a) => a.key === 'floor')!.value, { intValue: '-1' });
  for (const p of temp.gauge!.dataPoints) assertTime(p.timeUnixNano, before, after, 'gauge time');

  const sum = byName.get('pulses')!.sum!;
  assert.equal(byName.get('pulses')!.gauge, undefined);
  assert.equal(sum.isMonotonic, true);
  assert.equal(sum.aggregationTemporality, 2, 'CUMULATIVE');
  assert.equal(sum.dataPoints.length, 1);
  assert.equal(sum.dataPoints[0].asInt, '12', 'an INT counter arrives as as_int (sfixed64)');
  assert.equal(sum.dataPoints[0].asDouble, undefined);
  assert.deepEqual(attrs(sum.dataPoints[0].attributes), { line: 'a' });
  const start = assertTime(sum.dataPoints[0].startTimeUnixNano, before, after, 'sum start time');
  assert.ok(start <= assertTime(sum.dataPoints[0].timeUnixNano, before, after, 'sum time'));

  const upDown = byName.get('queue.depth')!.sum!;
  assert.ok(upDown.isMonotonic !== true, 'an up-down counter is not monotonic');
  assert.equal(upDown.aggregationTemporality, 2);
  assert.equal(upDown.dataPoints[0].asInt, '-3', 'a negative sfixed64');
  assert.deepEqual(upDown.dataPoints[0].attributes, []);

  const hist = byName.get('latency')!;
  assert.equal(hist.unit, 'ms');
  assert.equal(hist.histogram!.aggregationTemporality, 2);
  assert.equal(hist.histogram!.dataPoints.length, 1);
  const hp = hist.histogram!.dataPoints[0];
  assert.deepEqual(attrs(hp.attributes), { route: '/x' });
  assert.equal(hp.count, '4');
  assert.equal(hp.sum, 625);
  assert.equal(hp.min, 5);
  assert.equal(hp.max, 500);
  assert.deepEqual(hp.explicitBounds, [10, 100]);
  assert.deepEqual(hp.bucketCounts, ['1', '2', '1'], '(-inf,10] (10,100] (100,+inf)');
  assertTime(hp.startTimeUnixNano, before, after, 'histogram start time');
  assertTime(hp.timeUnixNano, before, after, 'histogram time');

  const exp = byName.get('payload.size')!;
  assert.equal(exp.histogram, undefined);
  assert.equal(exp.exponentialHistogram!.aggregationTemporality, 2);
  const ep = exp.exponentialHistogram!.dataPoints[0];
  assert.equal(ep.count, '6');
  assert.equal(ep.sum, 0.001 + 0.5 + 3 + 3 + 1000);
  assert.equal(ep.zeroCount, '1', 'the 0 recorded');
  assert.equal(ep.min, 0);
  assert.equal(ep.max, 1000);
  assertTime(ep.timeUnixNano, before, after, 'exponential histogram time');
  // scale and offset are sint32 (zigzag): 0.001 lies below 1, so the first bucket has a negative index.
  const scale = ep.scale!;
  const offset = ep.positive!.offset!;
  const counts = ep.positive!.bucketCounts.map(Number);
  assert.ok(Number.isInteger(scale) && scale <= 20 && scale >= -10, `scale ${scale}`);
  assert.ok(offset < 0, `offset ${offset} is negative`);
  assert.equal(
    counts.reduce((a, b) => a + b, 0),
    5,
    'five positive values',
  );
  // Bucket i holds (base^i, base^(i+1)] with base = 2^(2^-scale): the smallest and largest values bound the range.
  const upper = (i: number) => 2 ** ((i + 1) * 2 ** -scale);
  const lower = (i: number) => 2 ** (i * 2 ** -scale);
  assert.ok(
    lower(offset) < 0.001 && 0.001 <= upper(offset) * (1 + 1e-9),
    `0.001 in bucket ${offset} at scale ${scale}`,
  );
  const last = offset + counts.length - 1;
  assert.ok(lower(last) < 1000 * (1 + 1e-9) && 1000 <= upper(last) * (1 + 1e-9), `1000 in the last bucket ${last}`);
  assert.ok(counts[0] >= 1 && counts[counts.length - 1] >= 1);
  assert.ok(ep.negative === undefined || ep.negative.bucketCounts.every((c) => c === '0'), 'no negative values');
});

test('logs from the OpenTelemetry JS SDK (OTLP/HTTP protobuf) read correctly with our decoder', async (t) => {
  const l = await listener();
  t.after(() => l.close());
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': 'interop-logs', 'device.id': 'sdk-dev-2', site: 'lab' }),
    processors: [new SimpleLogRecordProcessor(new OTLPLogExporter({ url: `${l.url}/v1/logs` }))],
  });
  const logger = provider.getLogger('interop-logger', '0.9.0');
  const when = 1732280000123;
  const before = nowNs();
  // Dates, not numbers: the SDK reads a number below its time origin as a performance-relative time.
  logger.emit({
    timestamp: new Date(when),
    observedTimestamp: new Date(when + 5),
    severityNumber: SeverityNumber.WARN,
    severityText: 'WARN',
    body: 'door open',
    eventName: 'device.door',
    attributes: {
      door: 3,
      big: Number.MAX_SAFE_INTEGER,
      below: -5,
      ok: false,
      ratio: 0.5,
      name: 'front',
      tags: ['a', 'b'],
    },
  });
  // [seconds, nanoseconds]: a full-precision time that no JS number can hold.
  logger.emit({
    timestamp: [1732280000, 123456789],
    severityNumber: SeverityNumber.ERROR,
    severityText: 'ERROR',
    body: { code: 'E42', temps: [1, 2.5, -3], nested: { deep: true, none: null } },
  });
  logger.emit({
    timestamp: new Date(when + 2),
    severityNumber: SeverityNumber.FATAL4,
    body: new Uint8Array([0, 1, 254, 255]),
  });
  await provider.forceFlush();
  const after = nowNs();
  await provider.shutdown();

  const sent = l.requests.filter((r) => r.path === '/v1/logs');
  assert.ok(sent.length >= 1, 'the exporter posted to /v1/logs');
  for (const r of sent) {
    assert.equal(r.headers['content-type'], 'application/x-protobuf');
    assert.equal(r.headers['content-encoding'], undefined, 'uncompressed by default');
  }
  const records = sent.flatMap((r) =>
    decodeLogsRequest(r.body).resourceLogs.flatMap((rl) => {
      assert.deepEqual(attrs(rl.resource!.attributes), {
        'service.name': 'interop-logs',
        'device.id': 'sdk-dev-2',
        site: 'lab',
      });
      return rl.scopeLogs.flatMap((sl) => {
        assert.deepEqual(sl.scope, { name: 'interop-logger', version: '0.9.0' });
        return sl.logRecords;
      });
    }),
  );
  assert.equal(records.length, 3);
  const bySeverity = new Map(records.map((r) => [r.severityNumber, r]));

  const warn = bySeverity.get(13)!;
  assert.equal(warn.timeUnixNano, '1732280000123000000');
  assert.equal(warn.observedTimeUnixNano, '1732280000128000000');
  assert.equal(warn.severityText, 'WARN');
  assert.equal(warn.eventName, 'device.door');
  assert.deepEqual(warn.body, { stringValue: 'door open' });
  const wa = new Map(warn.attributes.map((a) => [a.key, a.value]));
  assert.deepEqual(wa.get('door'), { intValue: '3' });
  assert.deepEqual(wa.get('big'), { intValue: '9007199254740991' });
  assert.deepEqual(wa.get('below'), { intValue: '-5' }, 'a negative int64 varint (ten bytes)');
  assert.deepEqual(wa.get('ok'), { boolValue: false });
  assert.deepEqual(wa.get('ratio'), { doubleValue: 0.5 });
  assert.deepEqual(wa.get('name'), { stringValue: 'front' });
  assert.deepEqual(wa.get('tags'), { arrayValue: { values: [{ stringValue: 'a' }, { stringValue: 'b' }] } });
  assert.equal(wa.size, 7);

  const error = bySeverity.get(17)!;
  assert.equal(error.timeUnixNano, '1732280000123456789', 'nanoseconds kept exactly (beyond 2^53)');
  assertTime(error.observedTimeUnixNano, before, after, 'observed time defaults to now');
  assert.equal(error.severityText, 'ERROR');
  assert.equal(error.eventName, undefined);
  assert.deepEqual(error.attributes, []);
  assert.deepEqual(anyValue(error.body!), { code: 'E42', temps: [1, 2.5, -3], nested: { deep: true, none: null } });
  assert.deepEqual(error.body!.kvlistValue!.values[1].value, {
    arrayValue: { values: [{ intValue: '1' }, { doubleValue: 2.5 }, { intValue: '-3' }] },
  });

  const fatal = bySeverity.get(24)!;
  assert.equal(fatal.timeUnixNano, '1732280000125000000');
  assert.equal(fatal.severityText, undefined);
  assert.deepEqual(fatal.body, { bytesValue: Buffer.from([0, 1, 254, 255]).toString('base64') });
});
