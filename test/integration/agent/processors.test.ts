import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { metricValue, repoRoot, startAgent } from '../../helpers/agent-process.js';
import { startAggregator } from '../../helpers/aggregator-process.js';
import { pahoPublish } from '../../helpers/mosquitto.js';
import { OtlpHttpSink } from '../../helpers/otlp-sink.js';
import { waitFor } from '../../helpers/ports.js';
import { tempDir } from '../../helpers/tmp.js';

const paho = join(repoRoot, 'test', 'helpers', 'paho_publish.py');

/** `{ key: value }` of an OTLP attribute list as the official decoder gives it. */
const attrs = (list: any[] | undefined): Record<string, string> =>
  Object.fromEntries((list ?? []).map((kv: any) => [kv.key, kv.value?.stringValue ?? JSON.stringify(kv.value)]));

test('attributes and redaction processors: paho devices → agent → aggregator → OTLP backend shows their effect', async (t) => {
  const dir = tempDir(t);
  const sink = new OtlpHttpSink();
  await sink.start();
  t.after(() => sink.stop());
  const agg = await startAggregator(dir, {
    export: { endpoint: `http://127.0.0.1:${sink.port}`, batch: { max_delay: '50ms' } },
  });
  t.after(() => agg.kill9());
  const agent = await startAgent(dir, {
    uplink: { endpoints: [`127.0.0.1:${agg.grpcPort}`] },
    batch: { max_delay: '50ms' },
    processors: [
      {
        attributes: {
          include: { devices: ['plant-*'] },
          actions: [
            { key: 'datacenter', value: 'dc-1', action: 'insert', scope: 'resource' },
            { key: 'serial', action: 'hash' },
          ],
        },
      },
      {
        attributes: { include: { metrics: ['temperature'] }, actions: [{ key: 'unit', value: 'C', action: 'upsert' }] },
      },
      { redaction: { keys_blocked: ['owner'] } },
    ],
  });
  t.after(() => agent.kill9());

  const reading = {
    ts: 1732280000000,
    seq: 0,
    temperature: 21.5,
    humidity: 40,
    serial: 'SN-77',
    contact: 'ops@example.com',
  };
  for (const device of ['plant-1', 'lab-1'])
    assert.deepEqual(
      (
        await pahoPublish(paho, [
          '--port',
          String(agent.mqttPort),
          '--device',
          device,
          '--payload-json',
          JSON.stringify(reading),
        ])
      ).acked,
      [0],
    );
  const event = {
    severity: 'warn',
    body: 'door opened by ops@example.com from 10.1.2.3',
    attributes: { owner: 'Ada' },
  };
  const sent = await pahoPublish(paho, [
    '--port',
    String(agent.mqttPort),
    '--device',
    'plant-1',
    '--topic',
    'devices/plant-1/events',
    '--payload-json',
    JSON.stringify(event),
  ]);
  assert.deepEqual(sent.acked, [0]);

  const resources = await waitFor('both devices and the event at the backend', () => {
    const m = sink.of('metrics').flatMap((q) => q.resourceMetrics);
    const l = sink.of('logs').flatMap((q) => q.resourceLogs);
    const ids = new Set(m.map((rm: any) => attrs(rm.resource.attributes)['device.id']));
    return ids.has('plant-1') && ids.has('lab-1') && l.length > 0 ? { m, l } : null;
  });

  const byDevice = (id: string) => resources.m.filter((rm: any) => attrs(rm.resource.attributes)['device.id'] === id);
  const points = (id: string, metric: string) =>
    byDevice(id)
      .flatMap((rm: any) => rm.scopeMetrics.flatMap((sm: any) => sm.metrics))
      .filter((mm: any) => mm.name === metric)
      .flatMap((mm: any) => mm.gauge.dataPoints.map((p: any) => attrs(p.attributes)));

  // Resource: only the selected device gets datacenter; the gateway's own attributes stay.
  const plant = attrs(byDevice('plant-1')[0].resource.attributes);
  assert.equal(plant.datacenter, 'dc-1');
  assert.equal(plant['otlp_edge.gateway.id'], 'gw-test');
  assert.equal(attrs(byDevice('lab-1')[0].resource.attributes).datacenter, undefined);

  // Points: serial hashed for plant-* only; unit only on temperature's points; the email masked everywhere.
  const sha = createHash('sha256').update('SN-77').digest('hex');
  assert.deepEqual(points('plant-1', 'temperature'), [{ serial: sha, contact: '****', unit: 'C' }]);
  assert.deepEqual(points('plant-1', 'humidity'), [{ serial: sha, contact: '****' }]);
  assert.deepEqual(points('lab-1', 'temperature'), [{ serial: 'SN-77', contact: '****', unit: 'C' }]);
  assert.deepEqual(points('lab-1', 'humidity'), [{ serial: 'SN-77', contact: '****' }]);
  // The seq gauge is still there once per reading (the split reading carries none).
  assert.equal(points('lab-1', 'otlp_edge.device.seq').length, 1);

  // The event: body redacted, blocked key replaced, the device's Resource as for its metrics.
  const log = resources.l[0].scopeLogs[0].logRecords[0];
  assert.equal(log.body.stringValue, 'door opened by **** from ****');
  assert.deepEqual(attrs(log.attributes), { owner: '****' });
  assert.equal(attrs(resources.l[0].resource.attributes).datacenter, 'dc-1');

  const m = await agent.metrics();
  assert.equal(
    metricValue(m, 'otlp_edge_agent_processor_redactions_total{processor="processors[2]",detector="key"}'),
    1,
  );
  assert.ok(
    metricValue(m, 'otlp_edge_agent_processor_redactions_total{processor="processors[2]",detector="email"}') >= 3,
  );
  assert.equal(
    metricValue(m, 'otlp_edge_agent_processor_redactions_total{processor="processors[2]",detector="ip"}'),
    1,
  );
  assert.ok(
    metricValue(m, 'otlp_edge_agent_processor_attributes_applied_total{processor="processors[0]",action="hash"}') >= 1,
  );
});

test('a processor config with a bad value stops the agent at start, naming the key path', async (t) => {
  const dir = tempDir(t);
  await assert.rejects(
    startAgent(dir, {
      processors: [{ redaction: { strategy: 'encrypt', key_file: join(dir, 'missing.key') } }],
    }),
    /processors\[0\]\.redaction\.key_file: cannot read/,
  );
});
