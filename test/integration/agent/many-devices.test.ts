import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Fleet } from '../../../simulators/fleet/fleet.js';
import { bufferDump, metricValue, startAgent } from '../../helpers/agent-process.js';
import { seqsByDevice } from '../../helpers/otlp-readings.js';
import { waitFor } from '../../helpers/ports.js';
import { tempDir } from '../../helpers/tmp.js';

const DEVICES = 2000;

test(`${DEVICES} devices on real sockets: every reading the agent acknowledged is in its buffer`, async (t) => {
  const dir = tempDir(t);
  const agent = await startAgent(dir, { log: { level: 'warn' } });
  t.after(() => agent.kill9());
  const fleet = new Fleet({
    url: `mqtt://127.0.0.1:${agent.mqttPort}`,
    devices: DEVICES,
    prefix: 'many-',
    client: 'lean',
    qos: 1,
    rate: DEVICES * 2, // two readings a second each
    duration: 8,
    eventRate: 0,
    connectTimeout: 30_000,
    drainTimeout: 10_000,
  });
  t.after(() => fleet.stop());
  await fleet.start();
  await waitFor('every device connected', () => fleet.connected === DEVICES, 60_000);
  await waitFor(
    'the agent counts every connection',
    async () => metricValue(await agent.metrics(), 'otlp_edge_agent_connected_devices') === DEVICES,
  );
  await fleet.finished;
  const summary = await fleet.stop();
  assert.ok(summary.acked > DEVICES * 4, `readings acknowledged: ${summary.acked}`);

  assert.equal(await agent.stop(), 0);
  const stored = seqsByDevice(bufferDump(agent.configPath));
  let missing = 0;
  let devicesWithAcks = 0;
  for (const [id, record] of summary.perDevice) {
    const acked = record.ackedSeqs.toArray();
    if (acked.length > 0) devicesWithAcks++;
    const have = new Set(stored.get(id) ?? []);
    for (const seq of acked) if (!have.has(seq)) missing++;
  }
  assert.equal(devicesWithAcks, DEVICES, 'every device had readings acknowledged');
  assert.equal(missing, 0, 'acknowledged readings missing from the buffer');
});
