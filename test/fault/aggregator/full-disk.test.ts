import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fill, smallDisk } from '../../helpers/disk.js';
import { metricValue } from '../../helpers/agent-process.js';
import { aggregatorMain, startAggregator } from '../../helpers/aggregator-process.js';
import { freePort, waitFor } from '../../helpers/ports.js';
import { startService, type ServiceProcess } from '../../helpers/process.js';
import { tempDir } from '../../helpers/tmp.js';
import { metricsPayload, sendBatch } from '../../helpers/uplink-client.js';
import { AckStatus } from '../../../protocol/uplink/messages.js';

async function readyz(apiPort: number): Promise<{ status: number; text: string }> {
  const r = await fetch(`http://127.0.0.1:${apiPort}/readyz`);
  return { status: r.status, text: await r.text() };
}

test('a full disk: batches are answered RETRY (never OK), /readyz says why, and a restart keeps trying to open until space is freed', async (t) => {
  const dir = tempDir(t);
  const disk = smallDisk(t);
  const dataDir = join(disk, 'agg');
  mkdirSync(dataDir);
  const ports = { grpcPort: await freePort(), apiPort: await freePort() };
  const first = await startAggregator(dir, { node: { data_dir: dataDir } }, ports);
  let current: ServiceProcess = first;
  t.after(() => current.kill9());
  const at = `127.0.0.1:${ports.grpcPort}`;
  assert.equal(
    (await sendBatch(at, { agentId: 'gw', seq: 1, payload: metricsPayload(['disk-1'], { t: 1 }), points: 2 })).ack
      ?.status,
    AckStatus.OK,
  );

  fill(join(disk, 'filler'));
  const devices = Array.from({ length: 300 }, (_, i) => `full-${i}-${'x'.repeat(60)}`);
  let seq = 2;
  const refused = await waitFor(
    'a write fails on the full disk',
    async () => {
      const r = await sendBatch(at, {
        agentId: 'gw',
        seq: seq++,
        payload: metricsPayload(devices, { a: 1, b: 2, c: 3 }, 20),
        points: 24_000,
      });
      assert.notEqual(r.ack?.status, undefined, r.err?.message);
      return r.ack?.status === AckStatus.RETRY ? r.ack : null;
    },
    30_000,
  );
  assert.match(refused.reason, /could not be stored/);
  const r = await readyz(ports.apiPort);
  assert.equal(r.status, 503);
  assert.match(r.text, /the last state write failed|reloading state after a failed write/);

  // Space freed: the node takes batches again, and what it acknowledges now survives a kill -9 (LevelDB is reopened
  // after the failed write; appending after a torn log record would lose these on the next open).
  rmSync(join(disk, 'filler'));
  const after = Array.from({ length: 50 }, (_, i) => `after-${i}`);
  await waitFor(
    'a batch is stored again',
    async () => {
      const x = await sendBatch(at, {
        agentId: 'gw',
        seq: seq++,
        payload: metricsPayload(after, { t: 1 }, 3),
        points: 300,
      });
      return x.ack?.status === AckStatus.OK;
    },
    30_000,
  );
  for (let i = 0; i < 5; i++) {
    const x = await sendBatch(at, {
      agentId: 'gw',
      seq: seq++,
      payload: metricsPayload(after, { u: i }, 3, Date.now() - 30_000 + i * 5000, 10 + i * 3),
      points: 300,
    });
    assert.equal(x.ack?.status, AckStatus.OK);
  }
  await waitFor('ready again', async () => (await readyz(ports.apiPort)).status === 200);
  await first.kill9();
  const second = await startAggregator(join(dir, 'second'), { node: { data_dir: dataDir } }, ports);
  current = second;
  for (const id of ['disk-1', 'after-0', 'after-49'])
    assert.equal((await second.get(`/v1/devices/${id}`)).status, 200, `${id} survived`);
  assert.equal(
    (await second.get('/v1/devices/after-7')).body.latest.u.value,
    4,
    'the last acknowledged batch survived',
  );

  // Restart on a full disk: the node stays up and keeps trying to open its store.
  fill(join(disk, 'filler'));
  await second.kill9();
  fill(join(disk, 'filler-2')); // whatever the kill freed
  const config = {
    node: { id: 'agg-test', data_dir: dataDir },
    grpc: { host: '127.0.0.1', port: ports.grpcPort },
    otlp_http: { enabled: false },
    api: { host: '127.0.0.1', port: ports.apiPort },
  };
  const restarted = await startService(
    join(dir, 'restart'),
    'aggregator',
    aggregatorMain,
    config,
    `http://127.0.0.1:${ports.apiPort}/healthz`,
  );
  current = restarted;
  const state = await waitFor(
    'the first open attempt',
    async () => {
      const m = metricValue(
        await (await fetch(`http://127.0.0.1:${ports.apiPort}/metrics`)).text(),
        'otlp_edge_aggregator_state_open_failures_total',
      );
      return m >= 1 ? 'failing' : (await readyz(ports.apiPort)).status === 200 ? 'opened' : null;
    },
    20_000,
  );
  t.diagnostic(`after a restart on the full disk the store was ${state}`);
  if (state === 'failing') {
    assert.match((await readyz(ports.apiPort)).text, /state store not open: cannot open .*MiB free/);
    assert.match(restarted.output(), /the state store cannot be opened; retrying/);
    assert.equal(
      (await fetch(`http://127.0.0.1:${ports.apiPort}/v1/devices`)).status,
      503,
      'queries wait for the store',
    );
  }
  rmSync(join(disk, 'filler'));
  rmSync(join(disk, 'filler-2'));
  await waitFor('ready once space is freed', async () => (await readyz(ports.apiPort)).status === 200, 45_000);
  const r2 = await fetch(`http://127.0.0.1:${ports.apiPort}/v1/devices/after-0`);
  assert.equal(r2.status, 200, 'what was stored is kept');
});
