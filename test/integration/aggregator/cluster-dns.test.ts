import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startAggregator, type AggregatorProcess } from '../../helpers/aggregator-process.js';
import { startDnsServer } from '../../helpers/dns-server.js';
import { freePort, waitFor } from '../../helpers/ports.js';
import { tempDir } from '../../helpers/tmp.js';

const healthyIds = async (n: AggregatorProcess) => ((await n.get('/v1/ring')).body.members as { id: string; healthy: boolean }[]).filter((m) => m.healthy).map((m) => m.id).sort();

test('DNS membership: the ring follows the A records of a headless-Service-style name', async (t) => {
  const dir = tempDir(t);
  const dns = await startDnsServer('aggregators.otlp-edge.test', ['127.0.0.1', '127.0.0.2']);
  t.after(() => dns.close());
  // As in Kubernetes, every node listens on the same gRPC port, each on its own address.
  const grpcPort = await freePort();
  const node = async (i: number) => startAggregator(join(dir, `n${i}`), {
    node: { id: `dns-${i}` }, grpc: { host: `127.0.0.${i + 1}` },
    cluster: { dns: 'aggregators.otlp-edge.test', dns_server: dns.address, dns_interval: '1s', probe_interval: '200ms', failure_timeout: '1s' },
  }, { grpcPort, apiPort: await freePort() });
  const nodes = [await node(0), await node(1)];
  t.after(() => Promise.all(nodes.map((n) => n.kill9())));

  await waitFor('two members from DNS', async () => (await healthyIds(nodes[0])).join() === 'dns-0,dns-1' && (await healthyIds(nodes[1])).join() === 'dns-0,dns-1', 10_000);

  nodes.push(await node(2));
  dns.set(['127.0.0.1', '127.0.0.2', '127.0.0.3']);
  await waitFor('the new record joins the ring', async () => (await healthyIds(nodes[0])).join() === 'dns-0,dns-1,dns-2', 10_000);
  const three = (await nodes[0].get('/v1/ring')).body;
  assert.equal(three.members.length, 3);

  dns.set(['127.0.0.1', '127.0.0.3']);
  await waitFor('the removed record leaves the ring', async () => (await healthyIds(nodes[0])).join() === 'dns-0,dns-2', 10_000);
  assert.notEqual((await nodes[0].get('/v1/ring')).body.version, three.version);
});
