import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import mqtt from 'mqtt';
import { agentMain, bufferDump, startAgent } from '../../helpers/agent-process.js';
import { freePort } from '../../helpers/ports.js';
import { seqsByDevice } from '../../helpers/otlp-readings.js';
import { tempDir } from '../../helpers/tmp.js';

test('MQTT over WebSocket and QoS 2 publishes are stored; buffer stats reports them', async (t) => {
  const dir = tempDir(t);
  const wsPort = await freePort();
  const agent = await startAgent(dir, { mqtt: { broker: { ws: { port: wsPort } } } });
  t.after(() => agent.kill9());

  const ws = await mqtt.connectAsync(`ws://127.0.0.1:${wsPort}`, { clientId: 'ws-dev' });
  for (let s = 0; s < 5; s++)
    await ws.publishAsync('devices/ws-dev/telemetry', JSON.stringify({ seq: s, rssi: -60 - s }), { qos: 1 });
  await ws.endAsync();

  const tcp = await mqtt.connectAsync(`mqtt://127.0.0.1:${agent.mqttPort}`, { clientId: 'qos2-dev' });
  for (let s = 0; s < 5; s++)
    await tcp.publishAsync('devices/qos2-dev/telemetry', JSON.stringify({ seq: s, level: s * 2 }), { qos: 2 });
  await tcp.endAsync();

  assert.equal(await agent.stop(), 0);
  const seqs = seqsByDevice(bufferDump(agent.configPath));
  assert.deepEqual(seqs.get('ws-dev'), [0, 1, 2, 3, 4]);
  assert.deepEqual(seqs.get('qos2-dev'), [0, 1, 2, 3, 4], 'QoS 2 stored exactly once each');

  const stats = spawnSync(process.execPath, [agentMain, 'buffer', 'stats', '--config', agent.configPath, '--json'], {
    encoding: 'utf8',
  });
  assert.equal(stats.status, 0, stats.stderr);
  const s = JSON.parse(stats.stdout);
  assert.equal(s.points, 10 * 2, 'one metric and the seq gauge per reading');
  assert.equal(s.droppedBatches, 0);
  const human = spawnSync(process.execPath, [agentMain, 'buffer', 'stats', '--config', agent.configPath], {
    encoding: 'utf8',
  });
  assert.match(human.stdout, /dropped by the cap\s+0 batches, 0 points/);
});

test('anonymous devices are refused unless allow_anonymous is set', async (t) => {
  const dir = tempDir(t);
  const agent = await startAgent(dir, { mqtt: { broker: { allow_anonymous: false } } });
  t.after(() => agent.kill9());
  await assert.rejects(
    mqtt.connectAsync(`mqtt://127.0.0.1:${agent.mqttPort}`, { clientId: 'anon-1', reconnectPeriod: 0 }),
    /Not authorized|Connection refused/,
  );
  const metrics = await agent.metrics();
  assert.match(metrics, /otlp_edge_agent_auth_refusals_total\{reason="anonymous_refused"\} 1/);
});

test('buffer stats refuses clearly while an agent holds the buffer', async (t) => {
  const dir = tempDir(t);
  const agent = await startAgent(dir);
  t.after(() => agent.kill9());
  const r = spawnSync(process.execPath, [agentMain, 'buffer', 'stats', '--config', agent.configPath], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /OTLPEDGE_AGENT_BUFFER_LOCKED: the buffer at .* is in use by a running agent/);
});
