import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { metricValue, startAgent } from '../../helpers/agent-process.js';
import { startAggregator } from '../../helpers/aggregator-process.js';
import { OtlpHttpSink } from '../../helpers/otlp-sink.js';
import { waitFor } from '../../helpers/ports.js';
import { tempDir } from '../../helpers/tmp.js';
import { MetricsEncoder } from '../../../protocol/otlp/metrics-encoder.js';
import { LogsEncoder } from '../../../protocol/otlp/logs-encoder.js';

const attrs = (list: any[] | undefined): Record<string, unknown> =>
  Object.fromEntries((list ?? []).map((kv: any) => [kv.key, kv.value?.stringValue ?? kv.value]));

test('aggregator attributes and redaction: OTLP and uplinked data are changed before state, stream and export', async (t) => {
  const dir = tempDir(t);
  const sink = new OtlpHttpSink();
  await sink.start();
  t.after(() => sink.stop());
  const agg = await startAggregator(dir, {
    export: { endpoint: `http://127.0.0.1:${sink.port}`, batch: { max_delay: '50ms' } },
    processors: [
      {
        attributes: {
          actions: [
            { key: 'datacenter', value: 'dc-1', action: 'insert', scope: 'resource' },
            { key: 'serial', action: 'hash' },
          ],
        },
      },
      { redaction: { detectors: ['email'], strategy: 'mask', include: { devices: ['pii-*'] } } },
    ],
  });
  t.after(() => agg.kill9());

  // OTLP/HTTP metrics with a point attribute to hash, and logs with an address in the body and an attribute.
  const metrics = new MetricsEncoder({ gatewayId: 'sdk' }).encode([
    {
      deviceId: 'pii-1',
      readings: [{ ts: Date.now(), seq: 1, names: ['t'], values: [1], attributes: ['serial', 'SN-0042'] }],
    },
  ]);
  const logs = new LogsEncoder({ gatewayId: 'sdk' }).encode([
    {
      deviceId: 'pii-1',
      events: [
        {
          ts: Date.now(),
          severityNumber: 9,
          severityText: 'info',
          body: 'mail ops@example.com now',
          attributes: ['who', 'ops@example.com'],
        },
      ],
    },
    {
      deviceId: 'plain-1',
      events: [
        { ts: Date.now(), severityNumber: 9, severityText: 'info', body: 'mail ops@example.com', attributes: null },
      ],
    },
  ]);
  for (const [path, body] of [
    ['/v1/metrics', metrics],
    ['/v1/logs', logs],
  ] as const) {
    const r = await fetch(`http://127.0.0.1:${agg.otlpHttpPort}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf' },
      body,
    });
    assert.equal(r.status, 200, await r.text());
  }
  // An agent's devices over the uplink stream (columns): the Resource gets the datacenter too.
  const agent = await startAgent(join(dir, 'agent'), {
    uplink: { endpoints: [`127.0.0.1:${agg.grpcPort}`] },
    batch: { max_delay: '50ms' },
  });
  t.after(() => agent.kill9());
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${agent.mqttPort}`, { clientId: 'proc-feeder' });
  await c.publishAsync('devices/up-1/telemetry', JSON.stringify({ seq: 1, ts: Date.now(), t: 5 }), { qos: 1 });
  await c.endAsync();
  await waitFor('uplinked device applied', async () => (await agg.get('/v1/devices/up-1')).status === 200, 20_000);

  // State: the resource of both paths, and the stored events.
  assert.equal((await agg.get('/v1/devices/up-1')).body.resource.datacenter, 'dc-1');
  assert.equal((await agg.get('/v1/devices/pii-1')).body.resource.datacenter, 'dc-1');
  const events = (await agg.get('/v1/devices/pii-1/events')).body.events;
  assert.equal(events[0].body, 'mail **** now');
  assert.equal(events[0].attributes.who, '****');
  assert.equal(
    (await agg.get('/v1/devices/plain-1/events')).body.events[0].body,
    'mail ops@example.com',
    'not selected',
  );

  // Export: what the backend receives, decoded by the official decoders.
  await waitFor('exported', async () => sink.of('metrics').length > 0 && sink.of('logs').length > 0, 20_000);
  const rm = sink.of('metrics').flatMap((r: any) => r.resourceMetrics);
  const pii = rm.find((x: any) => attrs(x.resource.attributes)['device.id'] === 'pii-1');
  assert.equal(attrs(pii.resource.attributes).datacenter, 'dc-1');
  const point = pii.scopeMetrics[0].metrics.find((m: any) => m.name === 't').gauge.dataPoints[0];
  assert.equal(attrs(point.attributes).serial, createHash('sha256').update('SN-0042').digest('hex'));
  const record = sink
    .of('logs')
    .flatMap((r: any) => r.resourceLogs)
    .find((x: any) => attrs(x.resource.attributes)['device.id'] === 'pii-1').scopeLogs[0].logRecords[0];
  assert.equal(record.body.stringValue, 'mail **** now');
  const m = await (await fetch(`http://127.0.0.1:${agg.apiPort}/metrics`)).text();
  assert.ok(
    metricValue(
      m,
      'otlp_edge_aggregator_processor_attributes_applied_total{processor="processors[0]",action="hash"}',
    ) >= 1,
  );
  assert.ok(
    metricValue(m, 'otlp_edge_aggregator_processor_redactions_total{processor="processors[1]",detector="email"}') >= 2,
  );
});
