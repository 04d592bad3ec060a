import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { metricValue } from '../../helpers/agent-process.js';
import { startAggregator, type AggregatorProcess } from '../../helpers/aggregator-process.js';
import { freePort } from '../../helpers/ports.js';
import { repoRoot } from '../../helpers/process.js';
import { tempDir } from '../../helpers/tmp.js';

const run = promisify(execFile);
const sim = join(repoRoot, 'dist', 'simulators', 'main.js');

test('gateways: simulated agents load a 2-node cluster ring-aware; their accounting matches what the nodes counted', async (t) => {
  const dir = tempDir(t);
  const tokens = join(dir, 'agents.tokens');
  const agents = Array.from({ length: 12 }, (_, i) => `site-${i}`);
  writeFileSync(tokens, agents.map((a, i) => `${a} token-of-${a}-${i}-0123456789`).join('\n') + '\n');
  const secret = join(dir, 'cluster.secret');
  writeFileSync(secret, 'a-cluster-secret-0123456789abcdef');
  const ports = await Promise.all([0, 1].map(async () => ({ grpcPort: await freePort(), apiPort: await freePort() })));
  const members = ports.map((p, i) => `n${i}=127.0.0.1:${p.grpcPort}`);
  const nodes: AggregatorProcess[] = [];
  t.after(() => Promise.all(nodes.map((n) => n.kill9())));
  for (let i = 0; i < 2; i++)
    nodes.push(
      await startAggregator(
        join(dir, `n${i}`),
        {
          node: { id: `n${i}` },
          auth: { agent_tokens_file: tokens },
          cluster: { members, secret_file: secret, probe_interval: '200ms' },
        },
        ports[i],
      ),
    );

  const out = join(dir, 'gateways.json');
  const r = await run(process.execPath, [
    sim,
    'gateways',
    '--endpoints',
    `127.0.0.1:${ports[0].grpcPort}`,
    '--tokens',
    tokens,
    '--devices',
    '15',
    '--rate',
    '2',
    '--interval',
    '250ms',
    '--duration',
    '4s',
    '--json',
    out,
  ]);
  const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.equal(summary.gateways, 12);
  assert.equal(summary.devices, 180);
  assert.ok(summary.readings >= 180 * 2 * 3, `${summary.readings} readings made in 4 s at 2/s per device`);
  assert.deepEqual([summary.acked, summary.unacked, summary.rejected, summary.dropped], [summary.readings, 0, 0, 0]);

  // The nodes' own counts, device by device, through the API: every acknowledged reading is there once.
  const detail = JSON.parse(readFileSync(out, 'utf8'));
  let counted = 0;
  for (const [id, acked] of Object.entries(detail.perDevice as Record<string, number>)) {
    const dev = await nodes[1].get(`/v1/devices/${id}`);
    assert.equal(dev.status, 200, id);
    assert.deepEqual(dev.body.counts, { received: acked, duplicates: 0, missing: 0 }, id);
    counted += dev.body.counts.received;
  }
  assert.equal(counted, summary.acked);
  // Ring-aware: each gateway sent every device to its owner, so no node forwarded anything, and both got data.
  const metrics = await Promise.all(
    nodes.map(async (n) => (await fetch(`http://127.0.0.1:${n.apiPort}/metrics`)).text()),
  );
  for (const m of metrics) {
    assert.equal(metricValue(m, 'otlp_edge_aggregator_forwarded_points_total'), 0);
    assert.ok(metricValue(m, 'otlp_edge_aggregator_devices') > 0);
  }

  // A gateway whose token the nodes do not know gets nothing acknowledged, and the run says so with its exit code.
  writeFileSync(tokens.replace('agents', 'wrong'), 'site-0 not-the-token-0123456789\n');
  const bad = await run(process.execPath, [
    sim,
    'gateways',
    '--endpoints',
    `127.0.0.1:${ports[0].grpcPort}`,
    '--tokens',
    tokens.replace('agents', 'wrong'),
    '--devices',
    '2',
    '--duration',
    '1500ms',
    '--drain',
    '2s',
    '--quiet',
  ]).then(
    () => null,
    (e: { code: number; stdout: string; stderr: string }) => e,
  );
  assert.ok(bad !== null, 'exit code non-zero');
  assert.equal(bad.code, 1);
  const s = JSON.parse(bad.stdout.trim());
  assert.equal(s.acked, 0);
  assert.equal(s.unacked, s.readings);
  assert.match(bad.stderr, /the ring could not be learned yet.*(token|UNAUTHENTICATED|unauthenticated|agent)/i);
});
