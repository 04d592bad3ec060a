import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
import { agentMain, bufferDump, metricValue } from '../../helpers/agent-process.js';
import { freePort, waitFor } from '../../helpers/ports.js';
import { startService } from '../../helpers/process.js';
import { seqsByDevice } from '../../helpers/otlp-readings.js';
import { tempDir } from '../../helpers/tmp.js';

test('a buffer that cannot be opened (as on a full disk) keeps the agent up, says why on /readyz, /metrics and the log, and opens once it can', async (t) => {
  const dir = tempDir(t);
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(join(dataDir, 'buffer'), 'not a directory'); // LevelDB cannot open a file as its directory
  const [mqttPort, httpPort] = [await freePort(), await freePort()];
  const config = {
    agent: { id: 'gw-disk', data_dir: dataDir },
    mqtt: { broker: { tcp: { host: '127.0.0.1', port: mqttPort }, allow_anonymous: true } },
    http: { host: '127.0.0.1', port: httpPort },
    uplink: { endpoints: [] },
  };
  const agent = await startService(dir, 'agent', agentMain, config, `http://127.0.0.1:${httpPort}/healthz`);
  t.after(() => agent.kill9());
  const ready = async () => {
    const r = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
    return { status: r.status, text: await r.text() };
  };
  await waitFor(
    'a failed open is counted',
    async () =>
      metricValue(
        await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text(),
        'otlp_edge_agent_buffer_open_failures_total',
      ) >= 1,
  );
  const r = await ready();
  assert.equal(r.status, 503);
  assert.match(r.text, /buffer not open: cannot open .*buffer: .*MiB free on its filesystem/);
  assert.match(agent.output(), /the buffer cannot be opened; retrying/);
  assert.equal(agent.child.exitCode, null, 'the agent keeps running');

  rmSync(join(dataDir, 'buffer')); // space freed
  await waitFor('the buffer opens by itself', async () => (await ready()).status === 200, 45_000);
  const c = await connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: 'disk-1' });
  await c.publishAsync('devices/disk-1/telemetry', JSON.stringify({ seq: 1, t: 1 }), { qos: 1 });
  await c.endAsync();
  await agent.stop();
  assert.deepEqual(seqsByDevice(bufferDump(agent.configPath)).get('disk-1'), [1]);
});
