import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { metricValue, startAgent } from '../../helpers/agent-process.js';
import { aggregatorMain, startAggregator, type AggregatorProcess } from '../../helpers/aggregator-process.js';
import { freePort, waitFor } from '../../helpers/ports.js';
import { tempDir } from '../../helpers/tmp.js';

const run = promisify(execFile);
const ADMIN = 'admin-token-0123456789abcdef';
const READ = 'read-token-0123456789abcdef';
const T0 = Date.parse('2026-12-02T10:00:00Z');

const devicesOn = async (n: AggregatorProcess) =>
  metricValue(
    await (
      await fetch(`http://127.0.0.1:${n.apiPort}/metrics`, { headers: { authorization: `Bearer ${READ}` } })
    ).text(),
    'otlp_edge_aggregator_devices',
  );

test('a node that leaves under load (as its pod preStop hook runs `leave`) hands every device off first: counts stay exact', async (t) => {
  const dir = tempDir(t);
  const tokens = join(dir, 'api.tokens');
  writeFileSync(tokens, `${READ} read ops\n${ADMIN} admin scaler\n`);
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
        {
          node: { id: `agg-${i}` },
          auth: { api_tokens_file: tokens },
          cluster: { members, probe_interval: '200ms', failure_timeout: '2500ms' },
        },
        ports[i],
      ),
    );
  const get = (n: AggregatorProcess, path: string): Promise<any> =>
    fetch(`http://127.0.0.1:${n.apiPort}${path}`, { headers: { authorization: `Bearer ${READ}` } }).then((r) =>
      r.json(),
    );
  await waitFor('the ring has three members everywhere', async () => {
    const rs = await Promise.all(nodes.map((n) => get(n, '/v1/ring')));
    return rs.every((r) => r.members.length === 3) && new Set(rs.map((r) => r.version)).size === 1;
  });

  const agent = await startAgent(join(dir, 'agent'), {
    uplink: { endpoints: [`127.0.0.1:${ports[0].grpcPort}`], timeout: '3s' },
    batch: { max_delay: '50ms' },
  });
  t.after(() => agent.kill9());
  const devices = Array.from({ length: 90 }, (_, i) => `lv-${String(i).padStart(3, '0')}`);
  // The load: every device publishes a QoS 1 reading each 20 ms round, before, during and after the leave.
  const feeder = await mqtt.connectAsync(`mqtt://127.0.0.1:${agent.mqttPort}`, { clientId: 'leave-feeder' });
  let seq = 0;
  let feeding = true;
  const feed = (async () => {
    while (feeding) {
      const s = seq;
      await Promise.all(
        devices.map((d) =>
          feeder.publishAsync(`devices/${d}/telemetry`, JSON.stringify({ seq: s, ts: T0 + s * 1000, temperature: s }), {
            qos: 1,
          }),
        ),
      );
      seq = s + 1;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  t.after(async () => {
    feeding = false;
    await feed.catch(() => undefined);
    await feeder.endAsync();
  });
  await waitFor('every node owns devices', async () => (await Promise.all(nodes.map(devicesOn))).every((n) => n > 0));
  const leaving = nodes[2];
  const held = await devicesOn(leaving);

  // A read token may not make a node leave; an admin may. The command reads the admin token from the node's own file.
  const refused = await fetch(`http://127.0.0.1:${leaving.apiPort}/v1/cluster/leave`, {
    method: 'POST',
    headers: { authorization: `Bearer ${READ}` },
  });
  assert.equal(refused.status, 403);
  const left = await run(process.execPath, [
    aggregatorMain,
    'leave',
    '--config',
    leaving.configPath,
    '--timeout',
    '60s',
  ]);
  const last = JSON.parse(left.stdout.trim().split('\n').at(-1)!);
  assert.deepEqual(
    { state: last.state, devices: last.devices, export_queued: last.export_queued },
    {
      state: 'left',
      devices: 0,
      export_queued: 0,
    },
  );
  assert.equal(await devicesOn(leaving), 0, `the ${held} devices it held are gone from it while it still runs`);
  const handed = metricValue(
    await (
      await fetch(`http://127.0.0.1:${leaving.apiPort}/metrics`, { headers: { authorization: `Bearer ${READ}` } })
    ).text(),
    'otlp_edge_aggregator_handoff_devices_total{direction="out"}',
  );
  assert.ok(handed >= held, `handed off ${handed} ≥ the ${held} it held`);
  assert.equal(
    (await fetch(`http://127.0.0.1:${leaving.apiPort}/readyz`)).status,
    503,
    'not ready while out of the ring',
  );
  const ring = await get(nodes[0], '/v1/ring');
  assert.deepEqual(
    ring.members
      .filter((m: { share: number }) => m.share > 0)
      .map((m: { id: string }) => m.id)
      .sort(),
    ['agg-0', 'agg-1'],
  );
  assert.equal(ring.members.find((m: { id: string }) => m.id === 'agg-2')?.leaving, true);
  const again = await fetch(`http://127.0.0.1:${leaving.apiPort}/v1/cluster/leave`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  assert.equal(again.status, 200, 'asking again answers left');

  // Load goes on without it for a while; then the node stops and its volume is deleted, as a scale-down does.
  const seqAtLeave = seq;
  await waitFor('more readings after the leave', async () => seq >= seqAtLeave + 5);
  assert.equal(await devicesOn(leaving), 0, 'nothing lands on it after it left');
  await leaving.stop();
  rmSync(leaving.dataDir, { recursive: true, force: true });
  feeding = false;
  await feed;
  const published = seq;
  await waitFor(
    'the agent delivered everything',
    async () => metricValue(await agent.metrics(), 'otlp_edge_agent_uplink_backlog_batches') === 0,
    30_000,
  );
  for (const d of devices) {
    const dev = await waitFor(`${d} has all ${published} readings`, async () => {
      const r = await get(nodes[0], `/v1/devices/${d}`);
      return r.counts?.received === published ? r : null;
    });
    assert.deepEqual(dev.counts, { received: published, duplicates: dev.counts.duplicates, missing: 0 }, d);
    assert.notEqual(dev.owner, 'agg-2');
  }
  const total = (await Promise.all(nodes.slice(0, 2).map(devicesOn))).reduce((a, b) => a + b, 0);
  assert.equal(total, devices.length, 'every device lives on exactly one of the remaining nodes');
});

test('leave on a node outside any cluster changes nothing and says so', async (t) => {
  const dir = tempDir(t);
  const node = await startAggregator(dir, {});
  t.after(() => node.kill9());
  const r = await run(process.execPath, [aggregatorMain, 'leave', '--config', node.configPath]);
  assert.match(r.stdout, /not in a cluster: nothing to hand off/);
  assert.equal((await fetch(`http://127.0.0.1:${node.apiPort}/readyz`)).status, 200);
  const bad = await fetch(`http://127.0.0.1:${node.apiPort}/v1/cluster/leave?wait=5h`, { method: 'POST' });
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as any).error.message, /wait: expected a duration up to 60s/);
});
