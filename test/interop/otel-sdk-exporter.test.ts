import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { MeterProvider, PeriodicExportingMetricReader, AggregationTemporality } from '@opentelemetry/sdk-metrics';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { decodeLogsRequest, decodeMetricsRequest } from '../../protocol/otlp/decode.js';
import type { MetricJson } from '../../protocol/otlp/json-types.js';
import { attrs, anyValue } from '../helpers/otlp-readings.js';

/** A local OTLP/HTTP listener that keeps each request body by path. */
async function listener() {
  const bodies = new Map<string, Buffer[]>();
  const server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body = Buffer.concat(chunks);
    if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
    assert.equal(req.headers['content-type'], 'application/x-protobuf');
    bodies.set(req.url!, [...(bodies.get(req.url!) ?? []), body]);
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { bodies, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, close: () => new Promise((r) => server.close(r)) };
}

test('the OpenTelemetry JS SDK metrics exporter (OTLP/HTTP protobuf) decodes with our decoder, every field checked', async (t) => {
  const l = await listener();
  t.after(() => l.close());
  const before = BigInt(Date.now()) * 1_000_000n;
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': 'interop-svc', 'device.id': 'sdk-dev-1', site: 'lab' }),
    readers: [new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter({ url: `${l.url}/v1/metrics`, temporalityPreference: AggregationTemporality.CUMULATIVE }), exportIntervalMillis: 60_000 })],
  });
  const meter = provider.getMeter('interop-meter', '1.2.3');
  meter.createGauge('room.temperature', { unit: 'Cel', description: 'room temperature' }).record(21.5, { room: 'lab', floor: 2 });
  meter.createCounter('pulses').add(7, { line: 'a' });
  meter.createUpDownCounter('queue.depth').add(-3);
  const h = meter.createHistogram('latency', { advice: { explicitBucketBoundaries: [10, 100] } });
  for (const v of [5, 50, 500, 70]) h.record(v);
  await provider.forceFlush();
  await provider.shutdown();
  const after = BigInt(Date.now()) * 1_000_000n;

  const bodies = l.bodies.get('/v1/metrics')!;
  assert.ok(bodies?.length >= 1);
  const req = decodeMetricsRequest(bodies[0]);
  const rm = req.resourceMetrics[0];
  const ra = attrs(rm.resource!.attributes);
  assert.equal(ra['service.name'], 'interop-svc');
  assert.equal(ra['device.id'], 'sdk-dev-1');
  assert.equal(ra.site, 'lab');
  const sm = rm.scopeMetrics[0];
  assert.deepEqual(sm.scope, { name: 'interop-meter', version: '1.2.3' });
  const byName = new Map<string, MetricJson>(sm.metrics.map((m) => [m.name, m]));

  const gauge = byName.get('room.temperature')!;
  assert.equal(gauge.unit, 'Cel');
  assert.equal(gauge.description, 'room temperature');
  const gp = gauge.gauge!.dataPoints[0];
  assert.equal(gp.asDouble, 21.5);
  assert.deepEqual(attrs(gp.attributes), { room: 'lab', floor: 2 });
  const ts = BigInt(gp.timeUnixNano!);
  assert.ok(ts >= before && ts <= after, `timestamp ${ts} within the test's window`);

  const pulses = byName.get('pulses')!.sum!;
  assert.equal(pulses.isMonotonic, true);
  assert.equal(pulses.aggregationTemporality, 2);
  assert.equal(pulses.dataPoints[0].asDouble ?? Number(pulses.dataPoints[0].asInt), 7);
  assert.deepEqual(attrs(pulses.dataPoints[0].attributes), { line: 'a' });
  assert.ok(BigInt(pulses.dataPoints[0].startTimeUnixNano!) <= BigInt(pulses.dataPoints[0].timeUnixNano!));

  const depth = byName.get('queue.depth')!.sum!;
  assert.ok(!depth.isMonotonic, 'an up-down counter is not monotonic');
  assert.equal(depth.dataPoints[0].asDouble ?? Number(depth.dataPoints[0].asInt), -3);

  const hist = byName.get('latency')!.histogram!;
  assert.equal(hist.aggregationTemporality, 2);
  const hp = hist.dataPoints[0];
  assert.equal(hp.count, '4');
  assert.equal(hp.sum, 625);
  assert.equal(hp.min, 5);
  assert.equal(hp.max, 500);
  assert.deepEqual(hp.explicitBounds, [10, 100]);
  assert.deepEqual(hp.bucketCounts, ['1', '2', '1']);
});

test('the OpenTelemetry JS SDK logs exporter decodes with our decoder: bodies, severities, attributes, times', async (t) => {
  const l = await listener();
  t.after(() => l.close());
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': 'interop-logs', 'device.id': 'sdk-dev-2' }),
    processors: [new SimpleLogRecordProcessor(new OTLPLogExporter({ url: `${l.url}/v1/logs` }))],
  });
  const logger = provider.getLogger('interop-logger', '0.9.0');
  const when = 1732280000123;
  // A Date, not a number: the SDK reads numbers below its time origin as performance-relative times.
  logger.emit({ timestamp: new Date(when), severityNumber: SeverityNumber.WARN, severityText: 'WARN', body: 'door open', attributes: { door: 3, ok: false, ratio: 0.5, name: 'front' } });
  logger.emit({ timestamp: new Date(when + 1), severityNumber: SeverityNumber.ERROR, body: { code: 'E42', temps: [1, 2.5], nested: { deep: true } } });
  await provider.forceFlush();
  await provider.shutdown();

  const records = (l.bodies.get('/v1/logs') ?? []).flatMap((b) => decodeLogsRequest(b).resourceLogs.flatMap((rl) => {
    assert.equal(attrs(rl.resource!.attributes)['device.id'], 'sdk-dev-2');
    return rl.scopeLogs.flatMap((sl) => {
      assert.deepEqual(sl.scope, { name: 'interop-logger', version: '0.9.0' });
      return sl.logRecords;
    });
  }));
  assert.equal(records.length, 2);
  const [a, b] = records.sort((x, y) => (BigInt(x.timeUnixNano!) < BigInt(y.timeUnixNano!) ? -1 : 1));
  assert.equal(a.timeUnixNano, `${when}000000`);
  assert.ok(BigInt(a.observedTimeUnixNano!) > 0n);
  assert.equal(a.severityNumber, 13);
  assert.equal(a.severityText, 'WARN');
  assert.deepEqual(a.body, { stringValue: 'door open' });
  assert.deepEqual(attrs(a.attributes), { door: 3, ok: false, ratio: 0.5, name: 'front' });
  assert.equal(b.severityNumber, 17);
  assert.deepEqual(anyValue(b.body!), { code: 'E42', temps: [1, 2.5], nested: { deep: true } });
});
