import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { metricValue, startAgent } from '../../../helpers/agent-process.js';
import { startAggregator, type AggregatorProcess } from '../../../helpers/aggregator-process.js';
import { OtlpHttpSink, pointsByMetric } from '../../../helpers/otlp-sink.js';
import { pahoPublish } from '../../../helpers/mosquitto.js';
import { freePort, waitFor } from '../../../helpers/ports.js';
import { tempDir } from '../../../helpers/tmp.js';
import { sendBatch } from '../../../helpers/uplink-client.js';
import { repoRoot } from '../../../helpers/agent-process.js';
import { MetricsEncoder } from '../../../../protocol/otlp/metrics-encoder.js';
import { AckStatus } from '../../../../protocol/uplink/messages.js';

const exportTo = (sink: OtlpHttpSink) => ({ endpoint: `http://127.0.0.1:${sink.port}`, batch: { max_delay: '50ms' } });

test('in a 3-node cluster each point is exported once, by the owner of its device, with its resource attributes; OTLP from a source is routed like uplinked data', async (t) => {
  const dir = tempDir(t);
  const sink = new OtlpHttpSink();
  await sink.start();
  t.after(() => sink.stop());
  const ports = await Promise.all(
    Array.from({ length: 3 }, async () => ({ grpcPort: await freePort(), apiPort: await freePort() })),
  );
  const cluster = { members: ports.map((p, i) => `agg-${i}=127.0.0.1:${p.grpcPort}`), probe_interval: '200ms' };
  const nodes: AggregatorProcess[] = [];
  t.after(() => Promise.all(nodes.map((n) => n.kill9())));
  for (let i = 0; i < 3; i++)
    nodes.push(
      await startAggregator(
        join(dir, `n${i}`),
        { node: { id: `agg-${i}` }, cluster, export: exportTo(sink) },
        ports[i],
      ),
    );
  await waitFor('one ring of three on every node', async () => {
    const rings = await Promise.all(nodes.map(async (n) => (await n.get('/v1/ring')).body));
    return (
      rings.every((r) => r.members.filter((m: any) => m.healthy).length === 3) &&
      new Set(rings.map((r) => r.version)).size === 1
    );
  });

  // One uplink batch of 30 devices to node 0: most devices are owned elsewhere and forwarded.
  const now = Date.now();
  const devices = Array.from({ length: 30 }, (_, d) => ({
    deviceId: `cx-${d}`,
    readings: [{ ts: now, seq: 1, names: ['temp'], values: [d], attributes: null }],
  }));
  const enc = new MetricsEncoder({ gatewayId: 'gw-c', attributes: { site: 'plant-9' } });
  const r = await sendBatch(`127.0.0.1:${nodes[0].grpcPort}`, {
    agentId: 'gw-c',
    seq: 1,
    payload: enc.encode(devices),
    points: 60,
  });
  assert.equal(r.ack?.status, AckStatus.OK, r.err?.message ?? r.ack?.reason);
  // The same batch again (a retry after a lost ack): deduplicated, so not exported again.
  const again = await sendBatch(`127.0.0.1:${nodes[1].grpcPort}`, {
    agentId: 'gw-c',
    seq: 1,
    payload: enc.encode(devices),
    points: 60,
  });
  assert.equal(again.ack?.status, AckStatus.OK);

  // OTLP/HTTP from a source to node 2, for ten more devices.
  const res = await fetch(`http://127.0.0.1:${nodes[2].otlpHttpPort}/v1/metrics`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      resourceMetrics: Array.from({ length: 10 }, (_, d) => ({
        resource: {
          attributes: [
            { key: 'device.id', value: { stringValue: `ox-${d}` } },
            { key: 'rack', value: { stringValue: 'r1' } },
          ],
        },
        scopeMetrics: [
          {
            metrics: [
              {
                name: 'load',
                gauge: { dataPoints: [{ asDouble: d + 0.25, timeUnixNano: `${BigInt(now) * 1_000_000n}` }] },
              },
            ],
          },
        ],
      })),
    }),
  });
  assert.equal(res.status, 200);

  const points = await waitFor('every point at the backend', () => {
    const p = pointsByMetric(sink.of('metrics'));
    return [...p.keys()].filter((k) => k.endsWith('/temp') || k.endsWith('/load')).length === 40 ? p : null;
  });
  await new Promise((r) => setTimeout(r, 300)); // time for a second copy to arrive, were there one
  const final = pointsByMetric(sink.of('metrics'));
  for (let d = 0; d < 30; d++) assert.deepEqual(final.get(`cx-${d}/temp`), [d], `cx-${d} exported once`);
  for (let d = 0; d < 10; d++) assert.deepEqual(final.get(`ox-${d}/load`), [d + 0.25], `ox-${d} exported once`);
  void points;
  // Forwarded parts carry the original resources: the gateway's site and the source's rack reach the backend.
  const resources = sink.of('metrics').flatMap((q) => q.resourceMetrics.map((rm: any) => rm.resource.attributes));
  const attr = (attrs: any[], k: string) => attrs.find((a) => a.key === k)?.value.stringValue;
  for (const attrs of resources) {
    const id = attr(attrs, 'device.id');
    if (id?.startsWith('cx-')) assert.equal(attr(attrs, 'site'), 'plant-9', `${id} keeps site`);
    if (id?.startsWith('ox-')) assert.equal(attr(attrs, 'rack'), 'r1', `${id} keeps rack`);
  }
  // Each node exported its own devices' points: all three took part.
  const sent = await Promise.all(
    nodes.map(async (n) =>
      metricValue(
        await (await fetch(`http://127.0.0.1:${n.apiPort}/metrics`)).text(),
        'otlp_edge_aggregator_export_sent_points_total{exporter="otlp_http"}',
      ),
    ),
  );
  assert.equal(
    sent.reduce((a, b) => a + b, 0),
    30 * 2 + 10,
    `per node ${sent.join(' + ')}`,
  );
  assert.ok(
    sent.every((n) => n > 0),
    `per node ${sent.join(' + ')}`,
  );
  // Device state at the owners is what was sent, asked at any node.
  assert.equal((await nodes[1].get('/v1/devices/ox-3')).body.latest.load.value, 3.25);
});

test('an agent uplinking over its stream to an exporting node: the readings reach the backend as OTLP with their seq', async (t) => {
  const dir = tempDir(t);
  const sink = new OtlpHttpSink();
  await sink.start();
  t.after(() => sink.stop());
  const agg = await startAggregator(dir, { export: exportTo(sink) });
  t.after(() => agg.kill9());
  const agent = await startAgent(dir, {
    uplink: { endpoints: [`127.0.0.1:${agg.grpcPort}`] },
    batch: { max_delay: '50ms' },
  });
  t.after(() => agent.kill9());
  const paho = join(repoRoot, 'test', 'helpers', 'paho_publish.py');
  const pub = await pahoPublish(paho, [
    '--port',
    String(agent.mqttPort),
    '--device',
    'st-1',
    '--count',
    '40',
    '--qos',
    '1',
  ]);
  assert.equal(pub.acked.length, 40);
  const seqs = await waitFor('40 readings at the backend', () => {
    const s = pointsByMetric(sink.of('metrics')).get('st-1/otlp_edge.device.seq') ?? [];
    return s.length >= 40 ? s : null;
  });
  assert.deepEqual(
    [...new Set(seqs)].sort((a, b) => a - b),
    Array.from({ length: 40 }, (_, i) => i),
  );
  const m = await agent.metrics();
  assert.ok(
    metricValue(m, 'otlp_edge_agent_uplink_stream_frames_total') > 0 || /stream/.test(m),
    'sent over the stream',
  );
});
