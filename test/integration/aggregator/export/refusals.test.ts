import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { metricValue } from '../../../helpers/agent-process.js';
import { startAggregator } from '../../../helpers/aggregator-process.js';
import { OtlpHttpSink, pointsByMetric } from '../../../helpers/otlp-sink.js';
import { waitFor } from '../../../helpers/ports.js';
import { tempDir } from '../../../helpers/tmp.js';
import { retryDelayOf } from '../../../../protocol/otlp/rpc-status.js';

/** An OTLP/JSON request of one gauge point of a service (no device.id: export only). */
function serviceGauge(name: string, value: number, pad = 0): string {
  return JSON.stringify({
    resourceMetrics: [
      {
        resource: {
          attributes: [
            { key: 'service.name', value: { stringValue: 'svc' } },
            { key: 'pad', value: { stringValue: 'x'.repeat(pad) } },
          ],
        },
        scopeMetrics: [
          {
            metrics: [
              {
                name,
                gauge: { dataPoints: [{ asDouble: value, timeUnixNano: `${BigInt(Date.now()) * 1_000_000n}` }] },
              },
            ],
          },
        ],
      },
    ],
  });
}

test('a request the backend refuses as malformed (400) is dropped and counted; the breaker opens on a failing backend and closes when it is back', async (t) => {
  const dir = tempDir(t);
  const sink = new OtlpHttpSink();
  await sink.start();
  t.after(() => sink.stop());
  let mode: 'ok' | 'bad-poison' | 'down' = 'bad-poison';
  sink.answer = (r) => {
    if (mode === 'down') return 503;
    const names = JSON.stringify(r.request);
    return mode === 'bad-poison' && names.includes('poison') ? 400 : 200;
  };
  const agg = await startAggregator(dir, {
    export: { endpoint: `http://127.0.0.1:${sink.port}`, batch: { max_delay: '10ms' }, max_in_flight: 1 },
  });
  t.after(() => agg.kill9());
  const post = (body: string) =>
    fetch(`http://127.0.0.1:${agg.otlpHttpPort}/v1/metrics`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
  const metrics = async () => (await fetch(`http://127.0.0.1:${agg.apiPort}/metrics`)).text();
  assert.equal((await post(serviceGauge('poison', 1))).status, 200);
  await waitFor(
    'the refusal counted',
    async () =>
      metricValue(
        await metrics(),
        'otlp_edge_aggregator_export_dropped_points_total{exporter="otlp_http",reason="rejected"}',
      ) === 1,
  );
  assert.equal((await post(serviceGauge('fine', 2))).status, 200);
  await waitFor('the next request delivered', () => pointsByMetric(sink.of('metrics')).get('-/fine')?.[0] === 2);
  assert.match(agg.output(), /export refused for good/);

  mode = 'down';
  for (let i = 0; i < 6; i++) assert.equal((await post(serviceGauge('while-down', i))).status, 200);
  await waitFor(
    'the breaker open',
    async () => metricValue(await metrics(), 'otlp_edge_aggregator_export_breaker_state{exporter="otlp_http"}') === 2,
    20_000,
  );
  const requestsWhileOpen = sink.received.length;
  mode = 'ok';
  const values = await waitFor(
    'everything queued while down delivered after the probe',
    () => {
      const v = pointsByMetric(sink.of('metrics')).get('-/while-down') ?? [];
      return v.length >= 6 ? v : null;
    },
    30_000,
  );
  assert.deepEqual([...new Set(values)].sort(), [0, 1, 2, 3, 4, 5]);
  assert.ok(sink.received.length > requestsWhileOpen);
  assert.equal(metricValue(await metrics(), 'otlp_edge_aggregator_export_breaker_state{exporter="otlp_http"}'), 0);
});

test('overloaded: OTLP/HTTP answers 429 with Retry-After and OTLP/gRPC UNAVAILABLE with a RetryInfo', async (t) => {
  const dir = tempDir(t);
  const sink = new OtlpHttpSink();
  await sink.start();
  t.after(() => sink.stop());
  const agg = await startAggregator(dir, {
    otlp: { max_in_flight_bytes: '1MiB' },
    export: { endpoint: `http://127.0.0.1:${sink.port}` },
  });
  t.after(() => agg.kill9());
  const big = serviceGauge('big', 1, 700_000); // ~700 KB: two at once pass 1 MiB
  const answers = await Promise.all(
    Array.from({ length: 8 }, () =>
      fetch(`http://127.0.0.1:${agg.otlpHttpPort}/v1/metrics`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: big,
      }),
    ),
  );
  const statuses = answers.map((a) => a.status);
  assert.ok(statuses.includes(200), statuses.join());
  const refused = answers.find((a) => a.status === 429);
  assert.ok(refused, `some answered 429: ${statuses.join()}`);
  assert.equal(refused.headers.get('retry-after'), '1');

  const client = new grpc.Client(`127.0.0.1:${agg.grpcPort}`, grpc.credentials.createInsecure());
  t.after(() => client.close());
  const pass = (b: Buffer) => b;
  const call = (body: Buffer) =>
    new Promise<grpc.ServiceError | null>((resolve) =>
      client.makeUnaryRequest(
        '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
        pass,
        pass,
        body,
        new grpc.Metadata(),
        {},
        (err) => resolve(err),
      ),
    );
  // The same request as protobuf, for gRPC.
  const { otlpJsonToProto } = await import('../../../../aggregator/ingest/otlp-json.js');
  const { Signal } = await import('../../../../protocol/otlp/signal.js');
  const bytes = Buffer.from(otlpJsonToProto(Signal.METRICS, big));
  const errs = await Promise.all(Array.from({ length: 8 }, () => call(bytes)));
  const unavailable = errs.find((e) => e?.code === grpc.status.UNAVAILABLE);
  assert.ok(unavailable, `some refused: ${errs.map((e) => e?.code ?? 'ok').join()}`);
  const details = unavailable.metadata.get('grpc-status-details-bin')[0] as Buffer;
  assert.equal(retryDelayOf(details), 1000, 'RetryInfo: 1 s');
  assert.ok(
    errs.some((e) => e === null),
    'the others taken',
  );
});

test('with agent tokens, an OTLP/gRPC call without a valid token is UNAUTHENTICATED before its message is read', async (t) => {
  const dir = tempDir(t);
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const tokens = join(dir, 'tokens');
  writeFileSync(tokens, 'src-1 a-long-token-1\n', { mode: 0o600 });
  const agg = await startAggregator(dir, { auth: { agent_tokens_file: tokens } });
  t.after(() => agg.kill9());
  const client = new grpc.Client(`127.0.0.1:${agg.grpcPort}`, grpc.credentials.createInsecure());
  t.after(() => client.close());
  const pass = (b: Buffer) => b;
  const call = (token: string) =>
    new Promise<grpc.ServiceError | null>((resolve) => {
      const md = new grpc.Metadata();
      if (token) md.set('authorization', `Bearer ${token}`);
      client.makeUnaryRequest(
        '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
        pass,
        pass,
        Buffer.alloc(0),
        md,
        {},
        (err) => resolve(err),
      );
    });
  assert.equal((await call(''))?.code, grpc.status.UNAUTHENTICATED);
  assert.equal((await call('wrong-token-xx'))?.code, grpc.status.UNAUTHENTICATED);
  assert.equal(await call('a-long-token-1'), null, 'an empty request with a valid token is taken');
  const m = await (await fetch(`http://127.0.0.1:${agg.apiPort}/metrics`)).text();
  assert.equal(metricValue(m, 'otlp_edge_aggregator_calls_refused_total{service="otlp",reason="agent_token"}'), 2);
});
