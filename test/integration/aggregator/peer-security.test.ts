import { Compression } from '../../../protocol/compression.js';
import { Signal } from '../../../protocol/otlp/signal.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { metricValue } from '../../helpers/agent-process.js';
import { startAggregator, type AggregatorProcess } from '../../helpers/aggregator-process.js';
import { freePort, waitFor } from '../../helpers/ports.js';
import { createTestPki } from '../../helpers/tls.js';
import { tempDir } from '../../helpers/tmp.js';
import { peerServiceDefinition } from '../../../aggregator/cluster/peer-service.js';
import { PeerSecret, peerClientInterceptor } from '../../../aggregator/cluster/peer-auth.js';
import { uplinkServiceDefinition } from '../../../protocol/uplink/service.js';
import { MetricsEncoder } from '../../../protocol/otlp/metrics-encoder.js';
import { AckStatus } from '../../../protocol/uplink/messages.js';
import { metricsPayload, sendBatch } from '../../helpers/uplink-client.js';

const PeerClient = grpc.makeGenericClientConstructor(
  peerServiceDefinition as unknown as grpc.ServiceDefinition,
  'Peer',
);
const UplinkClient = grpc.makeGenericClientConstructor(
  uplinkServiceDefinition as unknown as grpc.ServiceDefinition,
  'Uplink',
);

type Stub = grpc.Client &
  Record<
    string,
    (
      req: object,
      md: grpc.Metadata,
      opts: grpc.CallOptions,
      cb: (err: grpc.ServiceError | null, res?: any) => void,
    ) => void
  >;

function call(client: Stub, method: string, req: object): Promise<{ err: grpc.ServiceError | null; res: any }> {
  return new Promise((resolve) =>
    client[method](req, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err, res) => resolve({ err, res })),
  );
}

/** One reading for `device` as a forwarded part would carry it. */
function forwardOf(device: string, tsMs: number) {
  const payload = new MetricsEncoder({ gatewayId: 'forger' }).encode([
    { deviceId: device, readings: [{ ts: tsMs, seq: 1, names: ['temp'], values: [99], attributes: null }] },
  ]);
  return {
    originAgentId: 'gw-victim',
    originSeq: 5,
    part: 0,
    fromNode: 'agg-x',
    signal: Signal.METRICS,
    compression: Compression.NONE,
    payload: Buffer.from(payload),
    points: 2,
    ringVersion: 0,
    deviceSetHash: 1,
    originAckedBelow: 1_000_000,
    originBufferId: 7,
  };
}

async function refusals(agg: AggregatorProcess, labels: string): Promise<number> {
  return metricValue(
    await (await fetch(`http://127.0.0.1:${agg.apiPort}/metrics`)).text(),
    `otlp_edge_aggregator_calls_refused_total{${labels}}`,
  );
}

test('a single node refuses every peer call and asks an agent token for GetRing; refusals are counted', async (t) => {
  const dir = tempDir(t);
  const tokens = join(dir, 'agents.tokens');
  writeFileSync(tokens, 'gw-1 token-of-gateway-1\n');
  const agg = await startAggregator(dir, { auth: { agent_tokens_file: tokens } });
  t.after(() => agg.kill9());
  const peer = new PeerClient(`127.0.0.1:${agg.grpcPort}`, grpc.credentials.createInsecure()) as unknown as Stub;
  t.after(() => peer.close());

  const fwd = await call(peer, 'Forward', forwardOf('forged-1', Date.now()));
  assert.equal(fwd.err?.code, grpc.status.PERMISSION_DENIED, 'forged Forward refused');
  assert.match(fwd.err!.details, /not in a cluster/);
  for (const m of ['Probe', 'Handoff', 'GetDevices', 'DeleteDevice']) {
    assert.equal((await call(peer, m, {})).err?.code, grpc.status.PERMISSION_DENIED, `${m} refused`);
  }
  assert.equal((await agg.get('/v1/devices/forged-1')).status, 404, 'no state from the forged call');

  const uplink = new UplinkClient(`127.0.0.1:${agg.grpcPort}`, grpc.credentials.createInsecure()) as unknown as Stub;
  t.after(() => uplink.close());
  const ring = await call(uplink, 'GetRing', {});
  assert.equal(ring.err?.code, grpc.status.UNAUTHENTICATED, 'GetRing needs an agent token');
  const md = new grpc.Metadata();
  md.set('authorization', 'Bearer token-of-gateway-1');
  const ok = await new Promise<{ err: grpc.ServiceError | null; res: any }>((resolve) =>
    uplink.GetRing({}, md, {}, (err, res) => resolve({ err, res })),
  );
  assert.equal(ok.err, null);
  assert.equal(ok.res.members.length, 1);

  assert.equal(await refusals(agg, 'service="peer",reason="not_clustered"'), 5);
  assert.equal(await refusals(agg, 'service="uplink",reason="agent_token"'), 1);
});

test("cluster peers sign their calls: forged Forward and Handoff are refused with no secret or a wrong one, and cannot drop an agent's batches", async (t) => {
  const dir = tempDir(t);
  const secretFile = join(dir, 'cluster.secret');
  writeFileSync(secretFile, 'a-cluster-secret-of-enough-bytes\n');
  const ports = [0, 1].map(() => ({ grpcPort: 0, apiPort: 0 }));
  for (const p of ports) {
    p.grpcPort = await freePort();
    p.apiPort = await freePort();
  }
  const members = ports.map((p, i) => `agg-${i}=127.0.0.1:${p.grpcPort}`);
  const nodes: AggregatorProcess[] = [];
  t.after(() => Promise.all(nodes.map((n) => n.kill9())));
  for (let i = 0; i < 2; i++) {
    nodes.push(
      await startAggregator(
        join(dir, `n${i}`),
        { node: { id: `agg-${i}` }, cluster: { members, secret_file: secretFile, probe_interval: '200ms' } },
        ports[i],
      ),
    );
  }
  await waitFor('both nodes see two healthy members with one ring version', async () => {
    const rings = await Promise.all(nodes.map(async (n) => (await n.get('/v1/ring')).body));
    return (
      rings.every((r) => r.members.filter((m: { healthy: boolean }) => m.healthy).length === 2) &&
      rings[0].version === rings[1].version
    );
  });

  const target = `127.0.0.1:${ports[0].grpcPort}`;
  const unsigned = new PeerClient(target, grpc.credentials.createInsecure()) as unknown as Stub;
  const wrong = new PeerClient(target, grpc.credentials.createInsecure(), {
    interceptors: [peerClientInterceptor(PeerSecret.of('not-the-cluster-secret-at-all'), 'agg-1')],
  }) as unknown as Stub;
  t.after(() => {
    unsigned.close();
    wrong.close();
  });
  for (const [client, reason] of [
    [unsigned, /no x-otlp-edge-peer credential/],
    [wrong, /does not match/],
  ] as const) {
    const f = await call(client, 'Forward', forwardOf('forged-2', Date.now()));
    assert.equal(f.err?.code, grpc.status.UNAUTHENTICATED);
    assert.match(f.err!.details, reason);
    const h = await call(client, 'Handoff', {
      fromNode: 'agg-1',
      ringVersion: 0,
      states: [{ deviceId: 'forged-2', state: Buffer.from([1, 2, 3]) }],
    });
    assert.equal(h.err?.code, grpc.status.UNAUTHENTICATED);
    assert.equal((await call(client, 'Probe', { nodeId: 'x', ringVersion: 0 })).err?.code, grpc.status.UNAUTHENTICATED);
  }
  assert.equal((await nodes[0].get('/v1/devices/forged-2')).status, 404);
  assert.equal((await nodes[1].get('/v1/devices/forged-2')).status, 404);
  assert.ok((await refusals(nodes[0], 'service="peer",reason="missing"')) >= 3);
  assert.ok((await refusals(nodes[0], 'service="peer",reason="bad_signature"')) >= 3);

  // The right secret is accepted: a signed probe answers with the node id.
  const signed = new PeerClient(target, grpc.credentials.createInsecure(), {
    interceptors: [peerClientInterceptor(PeerSecret.of('a-cluster-secret-of-enough-bytes'), 'agg-1')],
  }) as unknown as Stub;
  t.after(() => signed.close());
  const probe = await call(signed, 'Probe', { nodeId: 'agg-1', ringVersion: 0 });
  assert.equal(probe.err, null);
  assert.equal(probe.res.nodeId, 'agg-0');

  // DELETE /v1/devices/{id} at one node forgets the device at its owner, over the signed peer channel.
  const devices = Array.from({ length: 8 }, (_, i) => `del-${i}`);
  const sent = await sendBatch(target, { payload: metricsPayload(devices, { temp: 1 }), points: 16 });
  assert.equal(sent.ack?.status, AckStatus.OK);
  const owners = await Promise.all(devices.map(async (d) => (await nodes[1].get(`/v1/devices/${d}`)).body.owner));
  const remote = devices.filter((_, i) => owners[i] === 'agg-0');
  assert.ok(remote.length > 0, 'some devices live on the other node');
  const del = await fetch(`http://127.0.0.1:${nodes[1].apiPort}/v1/devices/${remote[0]}`, { method: 'DELETE' });
  assert.equal(del.status, 200);
  assert.deepEqual(((await del.json()) as any).nodes, ['agg-0']);
  for (const n of nodes) assert.equal((await n.get(`/v1/devices/${remote[0]}`)).status, 404);
  assert.equal((await nodes[0].get(`/v1/devices/${remote[1] ?? devices.find((d) => d !== remote[0])}`)).status, 200);

  // A member that died but is not yet out of the ring (failure_timeout 5 s): the device list is answered from the
  // members that can be asked and names the missing one.
  await nodes[0].kill9();
  const page = await nodes[1].get('/v1/devices');
  assert.equal(page.status, 200);
  assert.deepEqual(page.body.missing_members, ['agg-0']);
  const lost = await nodes[1].get(`/v1/devices/${remote[1] ?? remote[0]}`);
  assert.equal(lost.status, 503, 'a device whose owner cannot be asked is a 503, not a 500');
  assert.equal(lost.body.error.code, 'OTLPEDGE_API_OWNER_UNREACHABLE');
  assert.ok(
    page.body.devices.length > 0 &&
      page.body.devices.every((d: { id: string }) => owners[devices.indexOf(d.id)] === 'agg-1'),
  );
});

test('a static member that was never reached owns its share of the ring but is not reported healthy', async (t) => {
  const dir = tempDir(t);
  const secretFile = join(dir, 'cluster.secret');
  writeFileSync(secretFile, 'a-cluster-secret-of-enough-bytes');
  const p = { grpcPort: await freePort(), apiPort: await freePort() };
  const agg = await startAggregator(
    dir,
    {
      node: { id: 'agg-0' },
      cluster: { members: [`agg-0=127.0.0.1:${p.grpcPort}`, 'ghost=127.0.0.1:9'], secret_file: secretFile },
    },
    p,
  );
  t.after(() => agg.kill9());
  const ring = (await agg.get('/v1/ring')).body;
  const ghost = ring.members.find((m: { id: string }) => m.id === 'ghost');
  assert.equal(ghost.healthy, false);
  assert.ok(ghost.share > 0.2, 'it still owns its share until failure_timeout');
  assert.equal(ring.members.find((m: { id: string }) => m.id === 'agg-0').healthy, true);
});

test('a cluster with agent tokens but no cluster.secret_file does not start', async (t) => {
  const dir = tempDir(t);
  const tokens = join(dir, 'agents.tokens');
  writeFileSync(tokens, 'gw-1 token-of-gateway-1\n');
  const grpcPort = await freePort();
  await assert.rejects(
    startAggregator(
      dir,
      {
        node: { id: 'agg-0' },
        auth: { agent_tokens_file: tokens },
        cluster: { members: [`agg-0=127.0.0.1:${grpcPort}`, 'agg-1=127.0.0.1:1'] },
      },
      { grpcPort, apiPort: await freePort() },
    ),
    /cluster\.secret_file: required in a cluster when auth\.agent_tokens_file is set/,
  );
});

test('two TLS nodes reach each other over TLS with the cluster secret and converge on one ring version', async (t) => {
  const dir = tempDir(t);
  const pki = await createTestPki();
  t.after(() => pki.cleanup());
  const secretFile = join(dir, 'cluster.secret');
  writeFileSync(secretFile, 'another-cluster-secret-0123456789');
  const ports = [
    { grpcPort: await freePort(), apiPort: await freePort() },
    { grpcPort: await freePort(), apiPort: await freePort() },
  ];
  const members = ports.map((p, i) => `agg-${i}=127.0.0.1:${p.grpcPort}`);
  const tls = { enabled: true, cert: pki.server.certFile, key: pki.server.keyFile, ca: pki.caFile };
  const nodes: AggregatorProcess[] = [];
  t.after(() => Promise.all(nodes.map((n) => n.kill9())));
  for (let i = 0; i < 2; i++) {
    nodes.push(
      await startAggregator(
        join(dir, `n${i}`),
        {
          node: { id: `agg-${i}` },
          tls,
          cluster: { members, secret_file: secretFile, probe_interval: '200ms', failure_timeout: '1s' },
        },
        ports[i],
      ),
    );
  }
  // Long enough for a node that cannot reach its peer to drop it (failure_timeout 1s) and own everything alone.
  await new Promise((r) => setTimeout(r, 1500));
  const rings = await waitFor('both TLS nodes healthy in one ring', async () => {
    const rs = await Promise.all(nodes.map(async (n) => (await n.get('/v1/ring')).body));
    return rs.every((r) => r.members.length === 2 && r.members.every((m: { healthy: boolean }) => m.healthy)) &&
      rs[0].version === rs[1].version
      ? rs
      : null;
  });
  for (const m of rings[0].members) assert.ok(m.share > 0.2 && m.share < 0.8, `${m.id} owns ${m.share}`);

  // Over TLS, an unsigned caller that completes the handshake is still refused.
  const forger = new PeerClient(
    `127.0.0.1:${ports[0].grpcPort}`,
    grpc.credentials.createSsl(pki.ca),
  ) as unknown as Stub;
  t.after(() => forger.close());
  const f = await call(forger, 'Forward', forwardOf('forged-3', Date.now()));
  assert.equal(f.err?.code, grpc.status.UNAUTHENTICATED);
});
