import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { LoggerProvider, SimpleLogRecordProcessor, type LogRecordExporter } from '@opentelemetry/sdk-logs';
import { BasicTracerProvider, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { OTLPMetricExporter as MetricsGrpc } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as MetricsProto } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPMetricExporter as MetricsJson } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPLogExporter as LogsGrpc } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as LogsProto } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPLogExporter as LogsJson } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPTraceExporter as TracesGrpc } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as TracesProto } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as TracesJson } from '@opentelemetry/exporter-trace-otlp-http';
import { metricValue } from '../../../helpers/agent-process.js';
import { startAggregator } from '../../../helpers/aggregator-process.js';
import { waitFor } from '../../../helpers/ports.js';
import { tempDir } from '../../../helpers/tmp.js';
import { OtlpGrpcSink, OtlpHttpSink, pointsByMetric } from '../../../helpers/otlp-sink.js';

const TOKEN = 'sdk-source-token-1';

/** The three OTLP transports of the OpenTelemetry JS SDK, each configured for a node. */
function transports(grpcPort: number, httpPort: number) {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${TOKEN}`);
  const headers = { authorization: `Bearer ${TOKEN}` };
  const http = (path: string) => `http://127.0.0.1:${httpPort}/v1/${path}`;
  const g = `http://127.0.0.1:${grpcPort}`;
  return [
    {
      name: 'grpc',
      metrics: (): PushMetricExporter => new MetricsGrpc({ url: g, metadata: md }),
      logs: (): LogRecordExporter => new LogsGrpc({ url: g, metadata: md }),
      traces: (): SpanExporter => new TracesGrpc({ url: g, metadata: md }),
    },
    {
      name: 'http-protobuf',
      metrics: (): PushMetricExporter => new MetricsProto({ url: http('metrics'), headers }),
      logs: (): LogRecordExporter => new LogsProto({ url: http('logs'), headers }),
      traces: (): SpanExporter => new TracesProto({ url: http('traces'), headers }),
    },
    {
      name: 'http-json',
      metrics: (): PushMetricExporter => new MetricsJson({ url: http('metrics'), headers }),
      logs: (): LogRecordExporter => new LogsJson({ url: http('logs'), headers }),
      traces: (): SpanExporter => new TracesJson({ url: http('traces'), headers }),
    },
  ];
}

test('the OpenTelemetry JS SDK exporters (gRPC, HTTP protobuf, HTTP JSON) feed device state and reach an OTLP/HTTP and an OTLP/gRPC backend exactly', async (t) => {
  const dir = tempDir(t);
  const httpSink = new OtlpHttpSink();
  const grpcSink = new OtlpGrpcSink();
  await httpSink.start();
  await grpcSink.start();
  t.after(() => Promise.all([httpSink.stop(), grpcSink.stop()]));
  const tokens = join(dir, 'tokens');
  writeFileSync(tokens, `sdk-source ${TOKEN}\n`, { mode: 0o600 });
  const agg = await startAggregator(dir, {
    auth: { agent_tokens_file: tokens },
    export: [
      {
        name: 'collector-http',
        protocol: 'otlp_http',
        endpoint: `http://127.0.0.1:${httpSink.port}`,
        headers: { 'x-backend-key': 'k1' },
        batch: { max_delay: '100ms' },
      },
      {
        name: 'collector-grpc',
        protocol: 'otlp_grpc',
        endpoint: `127.0.0.1:${grpcSink.port}`,
        batch: { max_delay: '100ms' },
      },
    ],
  });
  t.after(() => agg.kill9());

  for (const [i, tr] of transports(agg.grpcPort, agg.otlpHttpPort).entries()) {
    const device = `sdk-${tr.name}`;
    // A device resource (state + export) and a service resource without device.id (export only).
    for (const [resource, value] of [
      [resourceFromAttributes({ 'device.id': device, 'service.name': 'meter', site: 'plant-7' }), 20 + i],
      [resourceFromAttributes({ 'service.name': `svc-${tr.name}` }), 100 + i],
    ] as const) {
      const reader = new PeriodicExportingMetricReader({ exporter: tr.metrics(), exportIntervalMillis: 60_000 });
      const provider = new MeterProvider({ resource, readers: [reader] });
      const meter = provider.getMeter('sdk-test');
      meter.createGauge('temperature', { unit: 'Cel' }).record(value + 0.5, { room: 'a' });
      meter.createHistogram('latency', { unit: 'ms' }).record(12);
      await provider.shutdown(); // exports once, as the last collection
    }
    const logs = new LoggerProvider({
      resource: resourceFromAttributes({ 'device.id': device }),
      processors: [new SimpleLogRecordProcessor(tr.logs())],
    });
    logs.getLogger('sdk-test').emit({ body: `hello from ${tr.name}`, severityNumber: 13, severityText: 'WARN' });
    await logs.forceFlush();
    await logs.shutdown();
    const tracer = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': `svc-${tr.name}` }),
      spanProcessors: [new SimpleSpanProcessor(tr.traces())],
    });
    tracer
      .getTracer('sdk-test')
      .startSpan(`span-${tr.name}`, { attributes: { step: i } })
      .end();
    await tracer.forceFlush();
    await tracer.shutdown();

    // Device state: the gauge of the device resource, as sent.
    const dev = await waitFor(`device ${device} in state`, async () => {
      const r = await agg.get(`/v1/devices/${device}`);
      return r.status === 200 && r.body.latest.temperature ? r.body : null;
    });
    assert.equal(dev.latest.temperature.value, 20 + i + 0.5, `${tr.name}: latest temperature`);
    assert.equal(
      (await agg.get(`/v1/devices/svc-${tr.name}`)).status,
      404,
      'a resource without device.id is no device',
    );
  }

  for (const sink of [httpSink, grpcSink]) {
    // Counted in spans: requests queued together may go out as one.
    const spanCount = () =>
      sink
        .of('traces')
        .reduce((n, r) => n + r.resourceSpans.reduce((k: number, x: any) => k + x.scopeSpans[0].spans.length, 0), 0);
    await waitFor('every span at the backend', () => spanCount() >= 3, 15_000);
    await waitFor('every log at the backend', () => sink.of('logs').length >= 1 && countLogs(sink.of('logs')) >= 3);
    const points = await waitFor('every metric at the backend', () => {
      const p = pointsByMetric(sink.of('metrics'));
      return p.size >= 4 && (p.get('-/temperature')?.length ?? 0) >= 3 ? p : null;
    });
    for (const [i, name] of ['grpc', 'http-protobuf', 'http-json'].entries()) {
      assert.deepEqual(points.get(`sdk-${name}/temperature`), [20 + i + 0.5], `${name}: device gauge exported once`);
      assert.equal(points.get(`-/temperature`)?.filter((v) => v === 100 + i + 0.5).length, 1, `${name}: service gauge`);
    }
    // Resource attributes, point attributes and histograms travel untouched.
    const rm = sink.of('metrics').flatMap((r) => r.resourceMetrics);
    const devRes = rm.find((x: any) => x.resource.attributes.some((a: any) => a.value.stringValue === 'sdk-grpc'));
    assert.ok(devRes.resource.attributes.some((a: any) => a.key === 'site' && a.value.stringValue === 'plant-7'));
    const temp = devRes.scopeMetrics[0].metrics.find((m: any) => m.name === 'temperature');
    assert.equal(temp.unit, 'Cel');
    assert.deepEqual(temp.gauge.dataPoints[0].attributes, [{ key: 'room', value: { stringValue: 'a' } }]);
    const hist = devRes.scopeMetrics[0].metrics.find((m: any) => m.name === 'latency');
    assert.equal(hist.histogram.dataPoints[0].sum, 12);
    const spans = sink
      .of('traces')
      .flatMap((r) => r.resourceSpans.flatMap((x: any) => x.scopeSpans.flatMap((s: any) => s.spans)));
    assert.deepEqual(spans.map((s: any) => s.name).sort(), ['span-grpc', 'span-http-json', 'span-http-protobuf']);
    assert.ok(
      spans.every((s: any) => Buffer.from(s.traceId, 'base64').length === 16),
      'trace ids kept (16 bytes)',
    );
    const bodies = sink
      .of('logs')
      .flatMap((r) => r.resourceLogs.flatMap((x: any) => x.scopeLogs.flatMap((s: any) => s.logRecords)));
    assert.deepEqual(bodies.map((l: any) => l.body.stringValue).sort(), [
      'hello from grpc',
      'hello from http-json',
      'hello from http-protobuf',
    ]);
  }
  assert.equal(httpSink.received[0].headers['x-backend-key'], 'k1', 'configured headers are sent');
  const metrics = await (await fetch(`http://127.0.0.1:${agg.apiPort}/metrics`)).text();
  assert.ok(metricValue(metrics, 'otlp_edge_aggregator_export_sent_points_total{exporter="collector-http"}') >= 12);
  assert.equal(metricValue(metrics, 'otlp_edge_aggregator_export_queue_points{exporter="collector-http"}'), 0);
});

function countLogs(requests: any[]): number {
  return requests.reduce(
    (n, r) =>
      n +
      r.resourceLogs.reduce(
        (m: number, x: any) => m + x.scopeLogs.reduce((k: number, s: any) => k + s.logRecords.length, 0),
        0,
      ),
    0,
  );
}

test('OTLP/HTTP answers per the specification: 401 without a token, 415, 404/405, 400 with a Status, 413 past the body limit, a partial success for data no exporter takes', async (t) => {
  const dir = tempDir(t);
  const tokens = join(dir, 'tokens');
  writeFileSync(tokens, `src-1 ${TOKEN}\n`, { mode: 0o600 });
  const agg = await startAggregator(dir, {
    auth: { agent_tokens_file: tokens },
    otlp_http: { max_body_bytes: '2KiB' },
  });
  t.after(() => agg.kill9());
  const url = `http://127.0.0.1:${agg.otlpHttpPort}`;
  const post = (path: string, body: string | Uint8Array, headers: Record<string, string> = {}) =>
    fetch(`${url}${path}`, {
      method: 'POST',
      body,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers },
    });
  assert.equal((await post('/v1/metrics', '{}', { authorization: 'Bearer wrong-token' })).status, 401);
  assert.equal((await post('/v1/metrics', '{}', { 'content-type': 'text/plain' })).status, 415);
  assert.equal((await post('/v1/metrics', '{}', { 'content-encoding': 'br' })).status, 415);
  assert.equal((await post('/v1/nothing', '{}')).status, 404);
  assert.equal((await fetch(`${url}/v1/metrics`)).status, 405);
  const bad = await post('/v1/metrics', '{"resourceMetrics": [');
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as any).message, /not an OTLP\/JSON request/);
  assert.equal((await post('/v1/metrics', 'x'.repeat(4096))).status, 413);
  const badId = await post(
    '/v1/metrics',
    JSON.stringify({
      resourceMetrics: [
        {
          resource: { attributes: [{ key: 'device.id', value: { stringValue: 'bad id with spaces' } }] },
          scopeMetrics: [{ metrics: [{ name: 'x', gauge: { dataPoints: [{ asDouble: 1, timeUnixNano: '1' }] } }] }],
        },
      ],
    }),
  );
  assert.equal(badId.status, 400, 'a device id that breaks the rule is bad data');
  // No exporter: a span is refused as a partial success (never acknowledged and dropped unseen).
  const span = await post(
    '/v1/traces',
    JSON.stringify({
      resourceSpans: [
        {
          scopeSpans: [
            { spans: [{ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', name: 's' }] },
          ],
        },
      ],
    }),
  );
  assert.equal(span.status, 200);
  const body = (await span.json()) as any;
  assert.equal(body.partialSuccess.rejectedSpans, '1');
  assert.match(body.partialSuccess.errorMessage, /no exporter configured/);
});
