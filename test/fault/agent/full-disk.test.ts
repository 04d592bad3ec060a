import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
import { bufferDump, metricValue, startAgent } from '../../helpers/agent-process.js';
import { fill, smallDisk } from '../../helpers/disk.js';
import { seqsByDevice } from '../../helpers/otlp-readings.js';
import { waitFor } from '../../helpers/ports.js';
import { tempDir } from '../../helpers/tmp.js';

test('a full disk: QoS 1 readings are not acknowledged while commits fail, /readyz says so, and every reading arrives once space is freed', async (t) => {
  const dir = tempDir(t);
  const disk = smallDisk(t);
  const agent = await startAgent(dir, { agent: { data_dir: join(disk, 'agent') }, batch: { max_delay: '20ms' } });
  t.after(() => agent.kill9());
  const c = await connectAsync(`mqtt://127.0.0.1:${agent.mqttPort}`, {
    clientId: 'disk-dev',
    clean: false,
    reconnectPeriod: 200,
  });
  t.after(() => c.end(true));
  await c.publishAsync('devices/disk-dev/telemetry', JSON.stringify({ seq: 1, t: 1 }), { qos: 1 });

  fill(join(disk, 'filler'));
  const acked: number[] = [];
  // Incompressible attributes make each commit large enough to need new disk blocks.
  const big = () => randomBytes(1500).toString('hex');
  for (let seq = 2; seq <= 40; seq++) {
    c.publish('devices/disk-dev/telemetry', JSON.stringify({ seq, t: seq, note: big() }), { qos: 1 }, (err) => {
      if (!err) acked.push(seq);
    });
  }
  await waitFor(
    'a commit fails on the full disk',
    async () => metricValue(await agent.metrics(), 'otlp_edge_agent_commit_errors_total') >= 1,
    20_000,
  );
  const r = await fetch(`http://127.0.0.1:${agent.httpPort}/readyz`);
  assert.equal(r.status, 503);
  assert.match(await r.text(), /the last commit failed .*not acknowledged/);
  const ackedWhileFull = acked.length;

  rmSync(join(disk, 'filler'));
  await waitFor('every reading acknowledged after space is freed', () => acked.length === 39, 30_000);
  await waitFor('ready again', async () => (await fetch(`http://127.0.0.1:${agent.httpPort}/readyz`)).status === 200);
  await c.endAsync();
  await agent.stop();
  const seqs = seqsByDevice(bufferDump(agent.configPath)).get('disk-dev')!;
  assert.deepEqual(
    [...new Set(seqs)],
    Array.from({ length: 40 }, (_, i) => i + 1),
    `all 40 stored (${ackedWhileFull} were acknowledged before the disk was full)`,
  );
});
