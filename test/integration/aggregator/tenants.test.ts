import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { metricValue, startAgent } from '../../helpers/agent-process.js';
import { startAggregator, type AggregatorProcess } from '../../helpers/aggregator-process.js';
import { freePort, waitFor } from '../../helpers/ports.js';
import { openStream } from '../../helpers/stream-client.js';
import { tempDir } from '../../helpers/tmp.js';
import { OtlpHttpSink } from '../../helpers/otlp-sink.js';
import { metricsPayload, sendBatch } from '../../helpers/uplink-client.js';
import { MetricsEncoder } from '../../../protocol/otlp/metrics-encoder.js';
import { AckStatus } from '../../../protocol/uplink/messages.js';

const ADMIN = 'admin-token-00000001';
const ACME = 'acme-read-token-0001';
const GLOBEX = 'globex-read-token-01';

async function api(node: AggregatorProcess, path: string, token: string, method = 'GET') {
  const r = await fetch(`http://127.0.0.1:${node.apiPort}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}` },
  });
  return { status: r.status, body: (await r.json()) as any };
}

const ids = (body: { devices: { id: string }[] }) => body.devices.map((d) => d.id);

test('tenants: tokens stamp tenant.id, a tenant cannot write into or read another tenant’s devices (2-node cluster)', async (t) => {
  const dir = tempDir(t);
  const agentTokens = join(dir, 'agents.tokens');
  writeFileSync(
    agentTokens,
    '# agent tenant\ngw-a  token-gw-a-0001  acme\ngw-b  token-gw-b-0001  globex\notlp-src  token-otlp-0001  acme\ngw-plain  token-plain-001\n',
  );
  const apiTokens = join(dir, 'api.tokens');
  writeFileSync(apiTokens, `${ADMIN} admin ops\n${ACME} admin acme-ops acme\n${GLOBEX} read globex-viewer globex\n`);
  const secret = join(dir, 'cluster.secret');
  writeFileSync(secret, 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90\n');
  const ports = await Promise.all(
    [0, 1].map(async () => ({ grpcPort: await freePort(), apiPort: await freePort(), otlpHttpPort: await freePort() })),
  );
  const members = ports.map((p, i) => `agg-${i}=127.0.0.1:${p.grpcPort}`);
  const sink = new OtlpHttpSink();
  await sink.start();
  t.after(() => sink.stop());
  const nodes: AggregatorProcess[] = [];
  t.after(() => Promise.all(nodes.map((n) => n.kill9())));
  for (let i = 0; i < 2; i++)
    nodes.push(
      await startAggregator(
        join(dir, `n${i}`),
        {
          node: { id: `agg-${i}` },
          cluster: { members, probe_interval: '200ms', failure_timeout: '2500ms', secret_file: secret },
          auth: { agent_tokens_file: agentTokens, api_tokens_file: apiTokens },
          export: { endpoint: `http://127.0.0.1:${sink.port}`, batch: { max_delay: '50ms' } },
        },
        ports[i],
      ),
    );
  await waitFor('a ring of two everywhere', async () =>
    (await Promise.all(nodes.map((n) => api(n, '/v1/ring', ADMIN)))).every(
      (r) => r.body.members?.filter((m: { healthy: boolean }) => m.healthy).length === 2,
    ),
  );

  // acme's gateway: real MQTT devices through an agent (its uplink stream).
  const agent = await startAgent(join(dir, 'agent'), {
    agent: { id: 'gw-a' },
    uplink: { endpoints: [`127.0.0.1:${ports[0].grpcPort}`], token: 'token-gw-a-0001', timeout: '3s' },
    batch: { max_delay: '50ms' },
  });
  t.after(() => agent.kill9());
  const acmeDevices = Array.from({ length: 6 }, (_, i) => `a-${i}`);
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${agent.mqttPort}`, { clientId: 'tenant-feeder' });
  for (let s = 1; s <= 5; s++)
    for (const d of acmeDevices)
      await c.publishAsync(`devices/${d}/telemetry`, JSON.stringify({ seq: s, ts: 1732280000000 + s * 1000, t: s }), {
        qos: 1,
      });
  await c.endAsync();
  await waitFor(
    'acme readings delivered',
    async () => (await api(nodes[1], '/v1/devices/a-5', ADMIN)).body?.counts?.received === 5,
    20_000,
  );

  // globex's gateway sends whole batches to node 0 (devices of both nodes: parts are forwarded), one of them naming
  // acme's device a-0, and a spoofed tenant.id in its resources.
  const globexDevices = Array.from({ length: 6 }, (_, i) => `b-${i}`);
  const spoof = new MetricsEncoder({ gatewayId: 'gw-b', attributes: { 'tenant.id': 'acme' } }).encode(
    [...globexDevices, 'a-0'].map((deviceId) => ({
      deviceId,
      readings: [1, 2, 3].map((seq) => ({
        ts: 1732290000000 + seq * 1000,
        seq,
        names: ['t'],
        values: [100 + seq],
        attributes: null,
      })),
    })),
  );
  const sent = await sendBatch(
    `127.0.0.1:${ports[0].grpcPort}`,
    { agentId: 'gw-b', seq: 1, payload: spoof },
    'token-gw-b-0001',
  );
  assert.equal(sent.ack?.status, AckStatus.OK, sent.err?.message ?? sent.ack?.reason);

  // An acme OTLP source over OTLP/HTTP to node 1, claiming globex in its resource.
  const otlp = new MetricsEncoder({ gatewayId: 'sdk', attributes: { 'tenant.id': 'globex', site: 'plant-9' } }).encode([
    { deviceId: 'o-1', readings: [{ ts: Date.now(), seq: 1, names: ['t'], values: [7], attributes: null }] },
  ]);
  const post = await fetch(`http://127.0.0.1:${ports[1].otlpHttpPort}/v1/metrics`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-protobuf', authorization: 'Bearer token-otlp-0001' },
    body: otlp,
  });
  assert.equal(post.status, 200, await post.text());

  // Every node answers every device with the tenant its sender's token names, whatever the data said.
  for (const node of nodes) {
    const a0 = (await api(node, '/v1/devices/a-0', ADMIN)).body;
    assert.equal(a0.resource['tenant.id'], 'acme');
    assert.equal(a0.counts.received, 5, "globex's readings were not applied to acme's device");
    assert.equal(a0.latest.t.value, 5);
    const b0 = (await api(node, '/v1/devices/b-0', ADMIN)).body;
    assert.equal(b0.resource['tenant.id'], 'globex', 'the spoofed tenant.id was replaced');
    assert.equal(b0.counts.received, 3);
    const o1 = (await api(node, '/v1/devices/o-1', ADMIN)).body;
    assert.deepEqual([o1.resource['tenant.id'], o1.resource.site], ['acme', 'plant-9']);
  }
  const refused = await Promise.all(
    nodes.map(async (n) =>
      metricValue(
        await (
          await fetch(`http://127.0.0.1:${n.apiPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })
        ).text(),
        'otlp_edge_aggregator_tenant_refused_points_total{reason="other_tenant",tenant="globex"}',
      ),
    ),
  );
  assert.equal(
    refused.reduce((a, b) => a + b, 0),
    3,
    "a-0: globex's 3 points of t counted as refused",
  );

  // What a backend gets carries the same tenants, and nothing of the refused data.
  const exported = () =>
    sink
      .of('metrics')
      .flatMap((r: any) =>
        r.resourceMetrics.map((rm: any) =>
          Object.fromEntries(rm.resource.attributes.map((kv: any) => [kv.key, kv.value.stringValue])),
        ),
      );
  // Every owner's part of globex's batch (each holds some b-* devices, and one holds a-0's refused readings).
  await waitFor(
    'exported',
    async () => globexDevices.every((id) => exported().some((a: any) => a['device.id'] === id)),
    20_000,
  );
  assert.ok(exported().every((a: any) => a['tenant.id'] === (a['device.id'].startsWith('b-') ? 'globex' : 'acme')));

  // Each tenant's token sees its own devices only, from any node; others' devices are unknown to it.
  for (const node of nodes) {
    assert.deepEqual(ids((await api(node, '/v1/devices', ACME)).body), [...acmeDevices, 'o-1']);
    assert.deepEqual(ids((await api(node, '/v1/devices', GLOBEX)).body), globexDevices);
    assert.equal(ids((await api(node, '/v1/devices', ADMIN)).body).length, 13);
    for (const path of ['/v1/devices/b-0', '/v1/devices/b-0/events', '/v1/devices/b-0/series?metric=t'])
      assert.equal((await api(node, path, ACME)).status, 404, path);
    assert.equal((await api(node, '/v1/devices/a-0', GLOBEX)).status, 404);
    assert.equal((await api(node, '/v1/devices/a-0/series?metric=t', ACME)).status, 200);
    assert.equal(
      (await fetch(`http://127.0.0.1:${node.apiPort}/metrics`, { headers: { authorization: `Bearer ${ACME}` } }))
        .status,
      403,
    );
    const fleet = await api(node, '/v1/fleet', ACME);
    assert.equal(fleet.status, 403);
    assert.match(fleet.body.error.message, /bound to tenant 'acme'/);
  }
  // An admin of one tenant cannot delete another tenant's device.
  assert.equal((await api(nodes[0], '/v1/devices/b-1', ACME, 'DELETE')).status, 404);
  assert.equal((await api(nodes[0], '/v1/devices/b-1', ADMIN)).status, 200);

  // The live stream of a tenant's token carries its devices only, from both nodes.
  const stream = await openStream(`ws://127.0.0.1:${ports[0].apiPort}/v1/stream?device=*&kind=reading`, {
    authorization: `Bearer ${GLOBEX}`,
  });
  t.after(() => stream.close());
  await waitFor('subscribed at both nodes', async () =>
    stream.messages.some((m) => m.type === 'hello' || m.type === 'member'),
  );
  await new Promise((r) => setTimeout(r, 500));
  const again = metricsPayload([...globexDevices, ...acmeDevices], { t: 1 }, 1, 1732300000000, 10);
  const acmeSent = await sendBatch(
    `127.0.0.1:${ports[1].grpcPort}`,
    { agentId: 'gw-plain', seq: 1, payload: metricsPayload(['p-1'], { t: 1 }) },
    'token-plain-001',
  );
  assert.equal(acmeSent.ack?.status, AckStatus.OK);
  const b2 = await sendBatch(
    `127.0.0.1:${ports[0].grpcPort}`,
    { agentId: 'gw-b', seq: 2, payload: again },
    'token-gw-b-0001',
  );
  assert.equal(b2.ack?.status, AckStatus.OK);
  await stream.next((m) => m.type === 'reading' && m.device === 'b-5', 10_000);
  await new Promise((r) => setTimeout(r, 500));
  const seen = new Set(stream.messages.filter((m) => m.type === 'reading').map((m) => m.device as string));
  assert.deepEqual([...seen].sort(), globexDevices, 'readings of globex devices only (none of acme, none untenanted)');
  // The device of an agent in no tenant belongs to none: tenants' tokens do not list it, an unbound token does.
  assert.deepEqual(ids((await api(nodes[0], '/v1/devices?match=p-', GLOBEX)).body), []);
  assert.deepEqual(ids((await api(nodes[0], '/v1/devices?match=p-', ADMIN)).body), ['p-1']);
  assert.equal((await api(nodes[1], '/v1/devices/p-1', ADMIN)).body.resource['tenant.id'], undefined);
});

test('quotas: a tenant over its rate is told to retry (uplink RETRY, OTLP 429) and loses nothing; over its device quota, new devices are refused and counted', async (t) => {
  const dir = tempDir(t);
  const agentTokens = join(dir, 'agents.tokens');
  writeFileSync(
    agentTokens,
    'gw-a token-gw-a-0001 acme\ngw-b token-gw-b-0001 globex\nsdk token-sdk-00001 globex\nsdk2 token-sdk2-0001 initech\n',
  );
  const agg = await startAggregator(dir, {
    auth: { agent_tokens_file: agentTokens },
    processors: [
      {
        quotas: {
          default: { points_per_second: 40 },
          tenants: {
            acme: { devices: 3, points_per_second: 0 },
            initech: { points_per_second: 0, bytes_per_second: 100 },
          },
        },
      },
    ],
  });
  t.after(() => agg.kill9());
  const metrics = async () => (await fetch(`http://127.0.0.1:${agg.apiPort}/metrics`)).text();

  // Rates: globex (the default, 40 points/s) — one batch of 40 readings (80 points: t and the seq gauge, as
  // otlp_edge_aggregator_points_ingested_total counts them) passes and leaves a debt of 40.
  const address = `127.0.0.1:${agg.grpcPort}`;
  const first = await sendBatch(
    address,
    { agentId: 'gw-b', seq: 1, payload: metricsPayload(['g-1'], { t: 1 }, 40) },
    'token-gw-b-0001',
  );
  assert.equal(first.ack?.status, AckStatus.OK);
  const over = await sendBatch(
    address,
    { agentId: 'gw-b', seq: 2, payload: metricsPayload(['g-1'], { t: 1 }, 1, Date.now(), 41) },
    'token-gw-b-0001',
  );
  assert.equal(over.ack?.status, AckStatus.RETRY);
  assert.match(over.ack!.reason, /tenant 'globex' is over its quota of 40 points per second/);
  assert.ok(over.ack!.retryAfterMs > 500 && over.ack!.retryAfterMs <= 1000, String(over.ack!.retryAfterMs));
  // OTLP from the same tenant: 429 with Retry-After.
  const otlp = await fetch(`http://127.0.0.1:${agg.otlpHttpPort}/v1/metrics`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-protobuf', authorization: 'Bearer token-sdk-00001' },
    body: metricsPayload(['g-2'], { t: 1 }),
  });
  assert.equal(otlp.status, 429);
  assert.ok(Number(otlp.headers.get('retry-after')) >= 1);
  await new Promise((r) => setTimeout(r, over.ack!.retryAfterMs + 100));
  const later = await sendBatch(
    address,
    { agentId: 'gw-b', seq: 2, payload: metricsPayload(['g-1'], { t: 1 }, 1, Date.now(), 41) },
    'token-gw-b-0001',
  );
  assert.equal(later.ack?.status, AckStatus.OK, 'taken once the debt is paid');
  assert.equal((await agg.get('/v1/devices/g-1')).body.counts.received, 41);
  const m = await metrics();
  assert.equal(
    metricValue(
      m,
      'otlp_edge_aggregator_quota_refused_total{tenant="globex",quota="points_per_second",ingest="uplink"}',
    ),
    1,
  );
  assert.equal(
    metricValue(m, 'otlp_edge_aggregator_quota_refused_total{tenant="globex",quota="points_per_second",ingest="otlp"}'),
    1,
  );

  // Bytes: initech may send 100 bytes/s; a body of a few hundred bytes passes, the next waits.
  const post = () =>
    fetch(`http://127.0.0.1:${agg.otlpHttpPort}/v1/metrics`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', authorization: 'Bearer token-sdk2-0001' },
      body: metricsPayload(['i-1'], { t: 1, u: 2 }, 3),
    });
  assert.equal((await post()).status, 200);
  const second = await post();
  assert.equal(second.status, 429);
  assert.match(await second.text(), /tenant 'initech' is over its quota of 100 bytes per second/);

  // Devices: acme may have 3; a real agent's five devices publish, three are kept and the rest counted.
  const agent = await startAgent(join(dir, 'agent'), {
    agent: { id: 'gw-a' },
    uplink: { endpoints: [address], token: 'token-gw-a-0001', timeout: '3s' },
    batch: { max_delay: '50ms' },
  });
  t.after(() => agent.kill9());
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${agent.mqttPort}`, { clientId: 'quota-feeder' });
  for (const d of ['q-1', 'q-2', 'q-3', 'q-4', 'q-5'])
    await c.publishAsync(`devices/${d}/telemetry`, JSON.stringify({ seq: 1, ts: Date.now(), t: 1 }), { qos: 1 });
  await c.endAsync();
  await waitFor(
    'acme data delivered',
    async () => metricValue(await agent.metrics(), 'otlp_edge_agent_uplink_backlog_batches') === 0,
    20_000,
  );
  const listed = (await agg.get('/v1/devices?match=q-')).body.devices.map((d: { id: string }) => d.id);
  assert.equal(listed.length, 3, listed.join(','));
  assert.equal(
    metricValue(await metrics(), 'otlp_edge_aggregator_tenant_refused_points_total{reason="devices",tenant="acme"}'),
    2,
  );
});
