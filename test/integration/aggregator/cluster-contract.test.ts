import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startAggregator, type AggregatorProcess } from '../../helpers/aggregator-process.js';
import { freePort, waitFor } from '../../helpers/ports.js';
import { tempDir } from '../../helpers/tmp.js';
import { sendBatch } from '../../helpers/uplink-client.js';
import { LogsEncoder } from '../../../protocol/otlp/logs-encoder.js';
import { MetricsEncoder } from '../../../protocol/otlp/metrics-encoder.js';
import { Signal } from '../../../protocol/otlp/signal.js';
import { AckStatus } from '../../../protocol/uplink/messages.js';

/**
 * The same data gives the same answers whatever the path: batches sent to one node of a 3-node cluster, whose
 * devices live on all three (forwarded to their owners), against a single node given the same batches. Metrics with
 * reading attributes, resource attributes (the gateway's id, its site), events.
 */

const DEVICES = 24;

/** Three nodes in one ring; each is killed when the test ends, also when a later one fails to start. */
async function cluster(t: { after(fn: () => unknown): void }, dir: string): Promise<AggregatorProcess[]> {
  const ports = await Promise.all(
    Array.from({ length: 3 }, async () => ({ grpcPort: await freePort(), apiPort: await freePort() })),
  );
  const members = ports.map((p, i) => `agg-${i}=127.0.0.1:${p.grpcPort}`);
  const nodes: AggregatorProcess[] = [];
  t.after(() => Promise.all(nodes.map((n) => n.kill9())));
  for (let i = 0; i < 3; i++)
    nodes.push(
      await startAggregator(
        join(dir, `n${i}`),
        { node: { id: `agg-${i}` }, cluster: { members, probe_interval: '200ms' } },
        ports[i],
      ),
    );
  await waitFor('one ring of three on every node', async () => {
    const rings = await Promise.all(nodes.map(async (n) => (await n.get('/v1/ring')).body));
    return (
      rings.every((r) => r.members.filter((m: { healthy: boolean }) => m.healthy).length === 3) &&
      new Set(rings.map((r) => r.version)).size === 1
    );
  });
  return nodes;
}

/** Two metrics batches (the second with a reading missing for some devices) and one events batch, as an agent sends. */
function batches(now: number) {
  const opts = { gatewayId: 'gw-k', attributes: { site: 'plant-3' } };
  const metrics = new MetricsEncoder(opts);
  const events = new LogsEncoder(opts);
  const ids = Array.from({ length: DEVICES }, (_, d) => `k-${d}`);
  return [
    {
      seq: 1,
      signal: Signal.METRICS,
      payload: metrics.encode(
        ids.map((deviceId, d) => ({
          deviceId,
          readings: [0, 1].map((s) => ({
            ts: now + s * 1000,
            seq: s,
            names: ['temp', 'rpm'],
            values: [20 + d + s / 10, 1000 * s + d],
            attributes: ['fw', `1.${d % 3}`],
          })),
        })),
      ),
      points: DEVICES * 6,
    },
    {
      seq: 2,
      signal: Signal.METRICS,
      payload: metrics.encode(
        ids.map((deviceId, d) => ({
          deviceId,
          readings: [d % 2 === 0 ? 3 : 2].map((s) => ({
            ts: now + s * 1000,
            seq: s,
            names: ['temp'],
            values: [30 + d],
            attributes: null,
          })),
        })),
      ),
      points: DEVICES * 2,
    },
    {
      seq: 3,
      signal: Signal.LOGS,
      payload: events.encode(
        ids.map((deviceId, d) => ({
          deviceId,
          events: [
            {
              ts: now + 500,
              severityNumber: 13,
              severityText: 'warn',
              body: `door ${d} open`,
              attributes: ['door', d, 'by', 'ops'],
            },
          ],
        })),
      ),
      points: DEVICES,
    },
  ];
}

/** What the API says of a device, without what differs by node (who owns it). */
async function view(node: AggregatorProcess, id: string) {
  const detail = await node.get(`/v1/devices/${id}`);
  const events = await node.get(`/v1/devices/${id}/events?limit=100`);
  assert.equal(detail.status, 200, `${id}: ${JSON.stringify(detail.body)}`);
  const { latest, counts, resource } = detail.body;
  return { latest, counts, resource, events: events.body.events };
}

test('a 3-node cluster given batches at one node answers every device as a single node given the same batches', async (t) => {
  const dir = tempDir(t);
  const nodes = await cluster(t, dir);
  const single = await startAggregator(join(dir, 'single'), { node: { id: 'solo' } });
  t.after(() => single.kill9());

  for (const b of batches(Date.now() - 60_000)) {
    for (const address of [`127.0.0.1:${nodes[0].grpcPort}`, `127.0.0.1:${single.grpcPort}`]) {
      const r = await sendBatch(address, { agentId: 'gw-k', ...b });
      assert.equal(r.ack?.status, AckStatus.OK, r.err?.message ?? r.ack?.reason);
    }
  }
  const owners = new Set<string>();
  for (let d = 0; d < DEVICES; d++) {
    const id = `k-${d}`;
    const want = await view(single, id);
    assert.equal(want.events.length, 1, `${id}: the single node kept its event`);
    assert.deepEqual(want.resource['otlp_edge.gateway.id'], 'gw-k');
    assert.deepEqual(want.counts, { received: 3, duplicates: 0, missing: d % 2 === 0 ? 1 : 0 }, 'seq 2 skipped');
    owners.add((await nodes[0].get(`/v1/devices/${id}`)).body.owner);
    for (const n of nodes) assert.deepEqual(await view(n, id), want, `${id} asked at ${n.apiPort}`);
  }
  assert.equal(owners.size, 3, 'the devices live on all three nodes');
});
