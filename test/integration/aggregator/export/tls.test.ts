import { test } from 'node:test';
import assert from 'node:assert/strict';
import { metricValue } from '../../../helpers/agent-process.js';
import { startAggregator } from '../../../helpers/aggregator-process.js';
import { OtlpGrpcSink, OtlpHttpSink, pointsByMetric } from '../../../helpers/otlp-sink.js';
import { waitFor } from '../../../helpers/ports.js';
import { createTestPki } from '../../../helpers/tls.js';
import { tempDir } from '../../../helpers/tmp.js';

test('export over TLS: backends whose certificate tls.ca vouches for get the data (OTLP/HTTPS, OTLP/gRPC with TLS) or that insecure_skip_verify waives; one it does not is never sent to, and the data stays queued', async (t) => {
  const dir = tempDir(t);
  const pki = await createTestPki();
  t.after(() => pki.cleanup());
  const tls = { cert: pki.server.cert, key: pki.server.key };
  const httpsSink = new OtlpHttpSink();
  const grpcSink = new OtlpGrpcSink();
  const untrusted = new OtlpHttpSink();
  const unchecked = new OtlpHttpSink();
  await unchecked.start(0, tls);
  await httpsSink.start(0, tls);
  await grpcSink.start(tls);
  await untrusted.start(0, tls);
  t.after(() => Promise.all([httpsSink.stop(), grpcSink.stop(), untrusted.stop(), unchecked.stop()]));
  const fast = { batch: { max_delay: '20ms' } };
  const agg = await startAggregator(dir, {
    export: [
      { name: 'https', endpoint: `https://127.0.0.1:${httpsSink.port}`, tls: { ca: pki.caFile }, ...fast },
      {
        name: 'grpcs',
        protocol: 'otlp_grpc',
        endpoint: `https://127.0.0.1:${grpcSink.port}`,
        tls: { ca: pki.caFile },
        ...fast,
      },
      { name: 'no-ca', endpoint: `https://127.0.0.1:${untrusted.port}`, ...fast },
      {
        name: 'unchecked',
        endpoint: `https://127.0.0.1:${unchecked.port}`,
        tls: { insecure_skip_verify: true },
        ...fast,
      },
    ],
  });
  t.after(() => agg.kill9());
  const res = await fetch(`http://127.0.0.1:${agg.otlpHttpPort}/v1/metrics`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      resourceMetrics: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] },
          scopeMetrics: [
            { metrics: [{ name: 'm', gauge: { dataPoints: [{ asDouble: 7, timeUnixNano: '1700000000000000000' }] } }] },
          ],
        },
      ],
    }),
  });
  assert.equal(res.status, 200);
  for (const sink of [httpsSink, grpcSink, unchecked])
    await waitFor('delivered over TLS', () => pointsByMetric(sink.of('metrics')).get('-/m')?.[0] === 7);
  const m = await waitFor('the untrusted backend refused by the exporter', async () => {
    const text = await (await fetch(`http://127.0.0.1:${agg.apiPort}/metrics`)).text();
    return metricValue(text, 'otlp_edge_aggregator_export_requests_total{exporter="no-ca",outcome="retry"}') > 0
      ? text
      : null;
  });
  assert.equal(untrusted.received.length, 0, 'nothing reached a backend whose certificate is not trusted');
  assert.equal(metricValue(m, 'otlp_edge_aggregator_export_queue_points{exporter="no-ca"}'), 1, 'kept');
  assert.match(agg.output(), /self-signed|unable to verify|certificate/i);
});
