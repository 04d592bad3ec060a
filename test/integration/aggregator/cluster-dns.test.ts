import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startAggregator, type AggregatorProcess } from '../../helpers/aggregator-process.js';
import { startDnsServer } from '../../helpers/dns-server.js';
import { freePort, waitFor } from '../../helpers/ports.js';
import { tempDir } from '../../helpers/tmp.js';

const healthyIds = async (n: AggregatorProcess) =>
  ((await n.get('/v1/ring')).body.members as { id: string; healthy: boolean }[])
    .filter((m) => m.healthy)
    .map((m) => m.id)
    .sort();

test('DNS membership: the ring follows the A records of a headless-Service-style name', async (t) => {
  const dir = tempDir(t);
  const dns = await startDnsServer('aggregators.otlp-edge.test', ['127.0.0.1', '127.0.0.2']);
  t.after(() => dns.close());
  // As in Kubernetes, every node listens on the same gRPC port, each on its own address.
  const grpcPort = await freePort();
  const node = async (i: number) =>
    startAggregator(
      join(dir, `n${i}`),
      {
        node: { id: `dns-${i}` },
        grpc: { host: `127.0.0.${i + 1}` },
        otlp_http: { enabled: false },
        cluster: {
          dns: 'aggregators.otlp-edge.test',
          dns_server: dns.address,
          dns_interval: '1s',
          probe_interval: '200ms',
          failure_timeout: '1s',
        },
      },
      { grpcPort, apiPort: await freePort() },
    );
  const nodes: AggregatorProcess[] = [];
  t.after(() => Promise.all(nodes.map((n) => n.kill9())));
  nodes.push(await node(0), await node(1));

  await waitFor(
    'two members from DNS',
    async () =>
      (await healthyIds(nodes[0])).join() === 'dns-0,dns-1' && (await healthyIds(nodes[1])).join() === 'dns-0,dns-1',
    10_000,
  );

  nodes.push(await node(2));
  dns.set(['127.0.0.1', '127.0.0.2', '127.0.0.3']);
  await waitFor(
    'the new record joins the ring',
    async () => (await healthyIds(nodes[0])).join() === 'dns-0,dns-1,dns-2',
    10_000,
  );
  const three = (await nodes[0].get('/v1/ring')).body;
  assert.equal(three.members.length, 3);

  dns.set(['127.0.0.1', '127.0.0.3']);
  await waitFor(
    'the removed record leaves the ring',
    async () => (await healthyIds(nodes[0])).join() === 'dns-0,dns-2',
    10_000,
  );
  assert.notEqual((await nodes[0].get('/v1/ring')).body.version, three.version);
});

test('a node listening on every address is known in the ring by its own DNS record; cluster.advertise names it outright', async (t) => {
  const dir = tempDir(t);
  const dns = await startDnsServer('aggregators.otlp-edge.test', ['127.0.0.5']);
  t.after(() => dns.close());
  // A wildcard bind collides with any socket on its port, including other tests' outgoing connections: a port taken
  // meanwhile is tried again with another.
  let grpcPort = 0;
  let learner: AggregatorProcess | undefined;
  for (let attempt = 1; learner === undefined; attempt++) {
    grpcPort = await freePort();
    try {
      learner = await startAggregator(
        join(dir, `learner-${attempt}`),
        {
          node: { id: 'dns-any' },
          grpc: { host: '0.0.0.0' },
          otlp_http: { enabled: false },
          cluster: {
            dns: 'aggregators.otlp-edge.test',
            dns_server: dns.address,
            dns_interval: '1s',
            probe_interval: '200ms',
          },
        },
        { grpcPort, apiPort: await freePort() },
      );
    } catch (e) {
      if (attempt >= 3 || !/EADDRINUSE/.test((e as Error).message)) throw e;
    }
  }
  const started = learner;
  t.after(() => started.kill9());
  // Other nodes and agents reach it at 127.0.0.5 (the record), not at the 127.0.0.1 a wildcard bind would suggest:
  // every node must see the same (id, address) pairs, or their ring versions differ and handoffs are refused.
  await waitFor(
    'the node takes its address from its DNS record',
    async () => {
      const ring = (await started.get('/v1/ring')).body as { members: { id: string; address: string }[] };
      return ring.members.some((m) => m.id === 'dns-any' && m.address === `127.0.0.5:${grpcPort}`);
    },
    10_000,
  );

  const named = await startAggregator(join(dir, 'named'), {
    node: { id: 'dns-named' },
    grpc: { host: '127.0.0.1' },
    otlp_http: { enabled: false },
    cluster: {
      dns: 'aggregators.otlp-edge.test',
      dns_server: dns.address,
      advertise: 'agg-1.aggregators.otlp-edge.test:4317',
    },
  });
  t.after(() => named.kill9());
  const ring = (await named.get('/v1/ring')).body as { members: { id: string; address: string }[] };
  assert.equal(ring.members.find((m) => m.id === 'dns-named')?.address, 'agg-1.aggregators.otlp-edge.test:4317');
});
