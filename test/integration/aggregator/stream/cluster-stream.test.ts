import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startAggregator, type AggregatorProcess } from '../../../helpers/aggregator-process.js';
import { startWebhook } from '../../../helpers/alertmanager.js';
import { freePort, waitFor } from '../../../helpers/ports.js';
import { tempDir } from '../../../helpers/tmp.js';
import { metricsPayload, sendBatch } from '../../../helpers/uplink-client.js';
import { openStream } from '../../../helpers/stream-client.js';
import { HashRing } from '../../../../protocol/ring/ring.js';
import { AckStatus } from '../../../../protocol/uplink/messages.js';
import { Signal } from '../../../../protocol/otlp/signal.js';
import { LogsEncoder } from '../../../../protocol/otlp/logs-encoder.js';

test('any node streams any device, across a ring change, and each alert comes from the owner only', async (t) => {
  const dir = tempDir(t);
  const hook = await startWebhook();
  t.after(() => hook.close());
  const ports = await Promise.all(
    Array.from({ length: 3 }, async () => ({ grpcPort: await freePort(), apiPort: await freePort() })),
  );
  const members = ports.map((p, i) => ({ id: `agg-${i}`, address: `127.0.0.1:${p.grpcPort}` }));
  const cluster = {
    members: members.map((m) => `${m.id}=${m.address}`),
    probe_interval: '200ms',
    failure_timeout: '2s',
  };
  const nodes: AggregatorProcess[] = [];
  t.after(() => Promise.all(nodes.map((n) => n.kill9())));
  for (let i = 0; i < 3; i++)
    nodes.push(
      await startAggregator(
        join(dir, `n${i}`),
        {
          node: { id: `agg-${i}` },
          cluster,
          devices: { offline_after: '3s' },
          alerts: { evaluation_interval: '1s', missing: { enabled: false }, webhooks: { url: hook.url } },
        },
        ports[i],
      ),
    );
  await waitFor(
    'three healthy members everywhere',
    async () =>
      (await Promise.all(nodes.map((n) => n.get('/v1/ring')))).every(
        (r) => r.body.members.filter((m: { healthy: boolean }) => m.healthy).length === 3,
      ),
    10_000,
  );
  const ring = new HashRing(members);
  const devices = Array.from({ length: 30 }, (_, i) => `c-${i}`);
  const watched = devices.find((d) => ring.owner(d).id === 'agg-1')!;

  // A client at agg-0 watches a device agg-1 owns; batches go in at agg-0.
  const client = await openStream(`ws://127.0.0.1:${ports[0].apiPort}/v1/stream?device=${watched}`);
  assert.deepEqual((await client.next((m) => m.type === 'hello')).members.sort(), ['agg-0', 'agg-1', 'agg-2']);
  await new Promise((r) => setTimeout(r, 300)); // the feeds from the other members open
  const grpc0 = `127.0.0.1:${ports[0].grpcPort}`;
  const start = Date.now() - 10_000;
  assert.equal(
    (await sendBatch(grpc0, { seq: 1, payload: metricsPayload(devices, { v: 1 }, 2, start) })).ack?.status,
    AckStatus.OK,
  );
  await client.next((m) => m.type === 'reading' && m.seq === 2);
  // Its events live on its owner and are answered by any node.
  const logs = new LogsEncoder({ gatewayId: 'test-gw' }).encode([
    {
      deviceId: watched,
      events: [{ ts: start, severityNumber: 13, severityText: 'WARN', body: 'door', attributes: null }],
    },
  ]);
  assert.equal((await sendBatch(grpc0, { seq: 3, signal: Signal.LOGS, payload: logs })).ack?.status, AckStatus.OK);
  assert.deepEqual(
    (await nodes[2].get(`/v1/devices/${watched}/events`)).body.events.map((e: any) => [e.severity, e.body]),
    [['WARN', 'door']],
  );

  // Every device goes silent: each DeviceOffline is raised once, by its owner.
  const changes = async () =>
    hook.requests.flatMap((r) => JSON.parse(r.body).changes as any[]).filter((c) => c.event === 'device_offline');
  await waitFor('30 devices offline at the webhook', async () => (await changes()).length >= 30, 20_000);
  await new Promise((r) => setTimeout(r, 2000)); // duplicates, if any, would arrive by now
  const offline = await changes();
  assert.equal(offline.length, 30, 'one change per device, not one per node');
  for (const c of offline) assert.equal(c.alert.owner, ring.owner(c.alert.device_id).id, c.alert.device_id);
  const listed = (await nodes[2].get('/v1/alerts')).body.alerts;
  assert.equal(listed.length, 30, 'GET /v1/alerts at any node lists the whole cluster');

  // The owner dies: the ring drops it, the watched device gets a new owner, and the same connection goes on.
  await nodes[1].kill9();
  await client.next((m) => m.type === 'member' && m.member === 'agg-1' && m.state === 'lost');
  await waitFor(
    'agg-1 out of the ring at agg-0',
    async () => (await nodes[0].get('/v1/ring')).body.members.every((m: any) => m.id !== 'agg-1' || !m.healthy),
    10_000,
  );
  const later = Date.now() - 2000;
  await waitFor(
    'a batch accepted under the new ring',
    async () =>
      (await sendBatch(grpc0, { seq: 4, payload: metricsPayload([watched], { v: 2 }, 1, later, 3) })).ack?.status ===
      AckStatus.OK,
    15_000,
  );
  const r3 = await client.next((m) => m.type === 'reading' && m.seq === 3);
  assert.deepEqual(r3.metrics, { v: 2 });
  const readings = client.messages.filter((m) => m.type === 'reading').map((m) => m.seq);
  assert.deepEqual(readings, [1, 2, 3], 'each reading once');
  client.close();
});
