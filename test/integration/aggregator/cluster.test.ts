import { Signal } from '../../../protocol/otlp/signal.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { metricValue, startAgent } from '../../helpers/agent-process.js';
import { startAggregator, type AggregatorProcess } from '../../helpers/aggregator-process.js';
import { freePort, waitFor } from '../../helpers/ports.js';
import { tempDir } from '../../helpers/tmp.js';
import * as grpc from '@grpc/grpc-js';
import { MetricsEncoder } from '../../../protocol/otlp/metrics-encoder.js';
import { HashRing } from '../../../protocol/ring/ring.js';
import { ZstdCompressor, Compression } from '../../../protocol/compression.js';
import { uplinkServiceDefinition } from '../../../protocol/uplink/service.js';
import { AckStatus, type UplinkAck } from '../../../protocol/uplink/messages.js';

/** Publishes `count` QoS 1 readings for each device id through one anonymous connection. */
async function publish(port: number, devices: string[], firstSeq: number, count: number) {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'cluster-test-feeder' });
  const all: Promise<unknown>[] = [];
  for (let s = firstSeq; s < firstSeq + count; s++) {
    for (const d of devices)
      all.push(
        c.publishAsync(
          `devices/${d}/telemetry`,
          JSON.stringify({ seq: s, ts: 1732280000000 + s * 1000, temperature: 20 + s }),
        ),
      );
  }
  await Promise.all(all);
  await c.endAsync();
}

/** After convergence every device lives on exactly one node: the nodes' device counts add up to the fleet. */
async function converged(nodes: AggregatorProcess[], expected: number) {
  let last: number[] = [];
  await waitFor(
    `no device with two live owners (${expected} devices)`,
    async () => {
      last = await Promise.all(
        nodes.map(async (n) =>
          metricValue(
            await (await fetch(`http://127.0.0.1:${n.apiPort}/metrics`)).text(),
            'otlp_edge_aggregator_devices',
          ),
        ),
      );
      return last.reduce((a, b) => a + b, 0) === expected;
    },
    20_000,
  ).catch((e) => {
    throw new Error(`${(e as Error).message}; per node: ${last.join(' + ')}`);
  });
}

async function apiOf(a: AggregatorProcess, path: string) {
  return (await a.get(path)).body;
}

test('3 aggregator nodes share devices by the ring; any node answers any device; a killed node leaves and rejoins', async (t) => {
  const dir = tempDir(t);
  const ports = await Promise.all(
    Array.from({ length: 3 }, async () => ({ grpcPort: await freePort(), apiPort: await freePort() })),
  );
  const members = ports.map((p, i) => `agg-${i}=127.0.0.1:${p.grpcPort}`);
  const cluster = { members, probe_interval: '200ms', failure_timeout: '2500ms' };
  const nodes: AggregatorProcess[] = [];
  t.after(() => Promise.all(nodes.map((n) => n.kill9())));
  const startNode = async (i: number) =>
    startAggregator(join(dir, `n${i}`), { node: { id: `agg-${i}` }, cluster }, ports[i]);
  for (let i = 0; i < 3; i++) nodes.push(await startNode(i));

  // Every node sees the same ring of three, each member owning about a third of the device space.
  const rings = await waitFor('the ring has three members everywhere', async () => {
    const rs = await Promise.all(nodes.map((n) => apiOf(n, '/v1/ring')));
    // …and every node has converged on the same ring (same version).
    return rs.every((r) => r.members.filter((m: { healthy: boolean }) => m.healthy).length === 3) &&
      new Set(rs.map((r) => r.version)).size === 1
      ? rs
      : null;
  });
  for (const m of rings[0].members) assert.ok(Math.abs(m.share - 1 / 3) <= 0.15 / 3, `${m.id} owns ${m.share}`);

  // A ring-aware agent given only node 0 as seed: it learns the ring and sends each owner its own devices.
  const agent = await startAgent(join(dir, 'agent'), {
    uplink: { endpoints: [`127.0.0.1:${ports[0].grpcPort}`], timeout: '3s' },
    batch: { max_delay: '50ms' },
  });
  t.after(() => agent.kill9());
  const devices = Array.from({ length: 60 }, (_, i) => `cl-${String(i).padStart(3, '0')}`);
  await publish(agent.mqttPort, devices, 0, 5);
  await waitFor(
    'first readings delivered',
    async () =>
      metricValue(await agent.metrics(), 'otlp_edge_agent_uplink_backlog_batches') === 0 &&
      metricValue(await agent.metrics(), 'otlp_edge_agent_uplink_batches_total{outcome="ok"}') > 0,
    20_000,
  );

  const owned = await Promise.all(
    nodes.map(async (n) =>
      metricValue(await (await fetch(`http://127.0.0.1:${n.apiPort}/metrics`)).text(), 'otlp_edge_aggregator_devices'),
    ),
  );
  assert.equal(
    owned.reduce((a, b) => a + b, 0),
    devices.length,
    `each device lives on exactly one node (${owned.join(' + ')})`,
  );
  assert.ok(
    owned.every((n) => n > 0),
    `every node owns some devices (${owned.join(', ')})`,
  );
  const nodeMetrics = await Promise.all(
    nodes.map(async (n) => (await fetch(`http://127.0.0.1:${n.apiPort}/metrics`)).text()),
  );
  assert.ok(
    nodeMetrics.every((m) => metricValue(m, 'otlp_edge_aggregator_uplink_batches_total{outcome="ok"}') > 0),
    'every owner got batches straight from the agent',
  );
  const forwarded = nodeMetrics.reduce((n, m) => n + metricValue(m, 'otlp_edge_aggregator_forwarded_points_total'), 0);
  const ingested = nodeMetrics.reduce((n, m) => n + metricValue(m, 'otlp_edge_aggregator_points_ingested_total'), 0);
  assert.ok(
    forwarded <= 0.05 * ingested,
    `forwarded share near 0 once the ring is known (${forwarded} of ${ingested})`,
  );

  // A sender that does not know the ring (an old agent, a batch stored under an old ring): node 0 splits the batch
  // by owner and forwards the parts; OK comes only when every part is durable.
  const enc = new MetricsEncoder({ gatewayId: 'ringless' });
  const strays = ['stray-a', 'stray-b', 'stray-c', 'stray-d', 'stray-e', 'stray-f'];
  // Readings without a seq: only batch deduplication can tell a retry from new data.
  const payload = new ZstdCompressor(3).compress(
    enc.encode(
      strays.map((deviceId) => ({
        deviceId,
        readings: [{ ts: 1732280000000, seq: -1, names: ['temperature'], values: [5], attributes: null }],
      })),
    ),
  );
  const Client = grpc.makeGenericClientConstructor(
    uplinkServiceDefinition as unknown as grpc.ServiceDefinition,
    'Uplink',
  );
  const sendVia = async (node: number) => {
    const client = new Client(`127.0.0.1:${ports[node].grpcPort}`, grpc.credentials.createInsecure()) as unknown as {
      Send: (...args: any[]) => void;
      close(): void;
    };
    try {
      return await new Promise<UplinkAck>((resolve, reject) =>
        client.Send(
          {
            agentId: 'ringless-gw',
            seq: 1,
            signal: Signal.METRICS,
            compression: Compression.ZSTD,
            payload,
            points: 6,
            ringVersion: 0,
            ackedBelow: 1,
          },
          new grpc.Metadata(),
          { deadline: Date.now() + 10_000 },
          (err: Error | null, res: UplinkAck) => (err ? reject(err) : resolve(res)),
        ),
      );
    } finally {
      client.close();
    }
  };
  const ack = await sendVia(0);
  assert.equal(ack.status, AckStatus.OK, ack.reason);
  // The agent did not get that ack and sends the batch again, once to the same node and once through another:
  // each owner's part is recognised by (agent, seq, device set), wherever it was split.
  for (const node of [0, 2]) assert.equal((await sendVia(node)).status, AckStatus.OK);
  assert.equal(ack.ringVersion, rings[0].version, 'acks carry the ring version');
  const n0 = await (await fetch(`http://127.0.0.1:${nodes[0].apiPort}/metrics`)).text();
  assert.ok(
    metricValue(n0, 'otlp_edge_aggregator_forwarded_points_total') > 0,
    'node 0 forwarded the parts it does not own',
  );
  for (const id of strays) {
    const r = await nodes[1].get(`/v1/devices/${id}`);
    assert.equal(r.status, 200);
    assert.equal(
      r.body.counts.received,
      1,
      `${id}: ${JSON.stringify(r.body.counts)} (a resent part was applied again)`,
    );
  }

  // Any node answers any device, with its owner and exact counts.
  for (const id of devices.slice(0, 9)) {
    const viaEach = await Promise.all(nodes.map((n) => n.get(`/v1/devices/${id}`)));
    for (const r of viaEach) {
      assert.equal(r.status, 200);
      assert.deepEqual(r.body.counts, { received: 5, duplicates: 0, missing: 0 });
      assert.equal(r.body.latest.temperature.value, 24);
    }
    assert.equal(new Set(viaEach.map((r) => r.body.owner)).size, 1);
    const series = await nodes[2].get(
      `/v1/devices/${id}/series?metric=temperature&from=1732279000000&to=1732290000000`,
    );
    assert.equal(
      series.body.points.reduce((n: number, p: { count: number }) => n + p.count, 0),
      5,
    );
  }
  // The device list merges every node's devices, paged by id.
  const seen: string[] = [];
  let cursor = '';
  for (let page = 0; page < 10; page++) {
    const body = await apiOf(nodes[1], `/v1/devices?limit=25${cursor ? `&cursor=${cursor}` : ''}`);
    seen.push(...body.devices.map((d: { id: string }) => d.id));
    if (!body.next) break;
    cursor = body.next;
  }
  assert.deepEqual(
    seen.filter((id) => id.startsWith('cl-')),
    devices,
  );

  // kill -9 node 2: the others drop it from the ring; the agent keeps delivering through node 0.
  const before = rings[0].version;
  await nodes[2].kill9();
  const shrunk = await waitFor(
    'node 2 left the ring',
    async () => {
      const r = await apiOf(nodes[0], '/v1/ring');
      return r.members.filter((m: { healthy: boolean }) => m.healthy).length === 2 ? r : null;
    },
    10_000,
  );
  assert.notEqual(shrunk.version, before);
  await waitFor(
    'node 1 agrees on the new ring',
    async () => (await apiOf(nodes[1], '/v1/ring')).version === shrunk.version,
    10_000,
  );
  await publish(agent.mqttPort, devices, 5, 3);
  const newest = async () => {
    const rs = await Promise.all(devices.map((id) => nodes[0].get(`/v1/devices/${id}`)));
    return rs
      .map((r, i) => [devices[i], r.status, r.body?.latest?.temperature?.value])
      .filter(([, st, v]) => st !== 200 || v !== 27);
  };
  await waitFor(
    'every device has its newest reading on a surviving owner',
    async () => (await newest()).length === 0,
    20_000,
  ).catch(async (e) => {
    console.log(
      'still behind:',
      JSON.stringify(await newest()).slice(0, 300),
      '\nagent:',
      agent.output().split('\n').slice(-8).join('\n').slice(0, 1500),
      '\nnode0:',
      nodes[0].output().split('\n').slice(-8).join('\n').slice(0, 1500),
    );
    throw e;
  });
  // Node 2 comes back with its data and rejoins; the state built meanwhile for its devices is handed back and
  // merged, so every device's counts are exact: 8 readings, none missing, none doubled.
  nodes[2] = await startNode(2);
  await waitFor('node 2 rejoined', async () => (await apiOf(nodes[0], '/v1/ring')).version === before, 10_000);
  await waitFor(
    'state handed back and merged',
    async () => {
      const rs = await Promise.all(devices.map((id) => nodes[1].get(`/v1/devices/${id}`)));
      return rs.every(
        (r) =>
          r.status === 200 &&
          r.body.counts.received === 8 &&
          r.body.counts.missing === 0 &&
          r.body.latest.temperature.value === 27,
      );
    },
    30_000,
  );
  await converged(nodes, devices.length + 6);
});

test('a 4th node joins under load: about a quarter of the devices move with their state, and counts stay exact', async (t) => {
  const dir = tempDir(t);
  const ports = await Promise.all(
    Array.from({ length: 4 }, async () => ({ grpcPort: await freePort(), apiPort: await freePort() })),
  );
  const cluster = {
    members: ports.map((p, i) => `agg-${i}=127.0.0.1:${p.grpcPort}`),
    probe_interval: '200ms',
    failure_timeout: '2500ms',
  };
  const startNode = (i: number) => startAggregator(join(dir, `n${i}`), { node: { id: `agg-${i}` }, cluster }, ports[i]);
  const nodes: AggregatorProcess[] = [];
  t.after(() => Promise.all(nodes.map((n) => n.kill9())));
  for (let i = 0; i < 3; i++) nodes.push(await startNode(i));
  await waitFor(
    'three healthy members',
    async () =>
      ((await apiOf(nodes[0], '/v1/ring')).members as { healthy: boolean }[]).filter((m) => m.healthy).length === 3,
    10_000,
  );

  const agent = await startAgent(join(dir, 'agent'), {
    uplink: { endpoints: [`127.0.0.1:${ports[0].grpcPort}`], timeout: '3s' },
    batch: { max_delay: '50ms' },
  });
  t.after(() => agent.kill9());
  const devices = Array.from({ length: 80 }, (_, i) => `mv-${String(i).padStart(3, '0')}`);
  let seq = 0;
  let loading = true;
  const load = (async () => {
    while (loading) await publish(agent.mqttPort, devices, seq++, 1);
  })();
  await waitFor('load flowing', async () => seq >= 5);
  const members = ports.map((p, i) => ({ id: `agg-${i}`, address: `127.0.0.1:${p.grpcPort}` }));
  const ring3 = new HashRing(members.slice(0, 3));
  const ring4 = new HashRing(members);

  nodes.push(await startNode(3));
  await waitFor(
    'the 4th node joined everywhere',
    async () =>
      (await Promise.all(nodes.map((n) => apiOf(n, '/v1/ring')))).every(
        (r) => r.members.filter((m: { healthy: boolean }) => m.healthy).length === 4,
      ),
    10_000,
  );
  const joinedAt = seq;
  await waitFor('load continued after the join', async () => seq >= joinedAt + 5, 20_000);
  loading = false;
  await load;
  const sent = seq;
  await waitFor(
    'agent backlog delivered',
    async () => metricValue(await agent.metrics(), 'otlp_edge_agent_uplink_backlog_batches') === 0,
    30_000,
  );

  const after = await waitFor(
    'handoffs settled: every device exact',
    async () => {
      const rs = await Promise.all(devices.map((id) => nodes[1].get(`/v1/devices/${id}`)));
      return rs.every((r) => r.status === 200 && r.body.counts.received === sent && r.body.counts.missing === 0)
        ? rs
        : null;
    },
    60_000,
  ).catch(async (e) => {
    const rs = await Promise.all(devices.slice(0, 5).map((id) => nodes[1].get(`/v1/devices/${id}`)));
    console.log(`sent ${sent}:`, JSON.stringify(rs.map((r) => [r.status, r.body.owner, r.body.counts])));
    for (const n of nodes)
      console.log(
        'dup/ok/retry/rejected',
        await fetch(`http://127.0.0.1:${n.apiPort}/metrics`)
          .then((r) => r.text())
          .then((t) =>
            t
              .split('\n')
              .filter((l) => /uplink_batches_total\{|forwarded_points_total |handoff/.test(l))
              .join(' | '),
          ),
      );
    console.log(
      'agent',
      (await agent.metrics())
        .split('\n')
        .filter((l) => /uplink_batches_total\{|backlog_batches /.test(l))
        .join(' | '),
    );
    for (const [i, n] of nodes.entries())
      console.log(
        `node ${i}:`,
        n
          .output()
          .split('\n')
          .filter((l) => /handoff|handed|merge|ring changed|not owned/.test(l))
          .slice(-6)
          .join('\n')
          .slice(0, 1500),
      );
    throw e;
  });
  // Every device answers from its owner under the new ring; those that moved, moved to the new node, with their
  // whole history (the counts above include readings sent before the join).
  assert.deepEqual(
    after.map((r) => r.body.owner),
    devices.map((id) => ring4.owner(id).id),
  );
  const moved = devices.filter((id) => ring3.owner(id).id !== ring4.owner(id).id);
  assert.ok(moved.every((id) => ring4.owner(id).id === 'agg-3'));
  assert.ok(
    moved.length >= 0.1 * devices.length && moved.length <= 0.45 * devices.length,
    `${moved.length} of ${devices.length} moved (about a quarter)`,
  );
  // Retries across a ring change may deliver a reading twice: it is counted a duplicate, never applied twice.
  for (const r of after) assert.deepEqual([r.body.counts.received, r.body.counts.missing], [sent, 0]);
  await converged(nodes, devices.length);
});
