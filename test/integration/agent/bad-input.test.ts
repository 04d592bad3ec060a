import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { bufferDump, metricValue, startAgent } from '../../helpers/agent-process.js';
import { seqsByDevice } from '../../helpers/otlp-readings.js';
import { tempDir } from '../../helpers/tmp.js';

test('malformed payloads are rejected on the errors topic, counted by reason, and the agent keeps serving', async (t) => {
  const dir = tempDir(t);
  const agent = await startAgent(dir);
  t.after(() => agent.kill9());
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${agent.mqttPort}`, { clientId: 'dev-bad' });
  t.after(() => client.endAsync(true));
  const errors: { code: string; reason: string; message: string; topic: string }[] = [];
  client.on('message', (_topic, payload) => errors.push(JSON.parse(payload.toString())));
  await client.subscribeAsync('devices/dev-bad/errors', { qos: 0 });

  const bad = [
    '{"temp": ', // bad_json
    '{"ts":"yesterday","temp":1}', // bad_ts
    '[]', // bad_shape
    '{"metrics":{"temp":"hot"}}', // bad_value
    'x'.repeat(300 * 1024), // too_large
  ];
  for (const m of bad) await client.publishAsync('devices/dev-bad/telemetry', m, { qos: 1 }); // acked even though rejected
  await client.publishAsync('devices/dev-bad/telemetry', JSON.stringify({ seq: 1, temp: 21 }), { qos: 1 });

  const deadline = Date.now() + 5000;
  while (errors.length < bad.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(
    errors.map((e) => e.reason),
    ['bad_json', 'bad_ts', 'bad_shape', 'bad_value', 'too_large'],
  );
  for (const e of errors) {
    assert.match(e.code, /^OTLPEDGE_PAYLOAD_/);
    assert.equal(e.topic, 'devices/dev-bad/telemetry');
  }
  assert.match(errors[1].message, /yesterday/);
  assert.match(errors[3].message, /temp/);

  const metrics = await agent.metrics();
  assert.equal(metricValue(metrics, 'otlp_edge_agent_messages_rejected_total{reason="bad_json"}'), 1);
  assert.equal(metricValue(metrics, 'otlp_edge_agent_messages_rejected_total{reason="too_large"}'), 1);
  assert.equal(metricValue(metrics, 'otlp_edge_agent_readings_received_total{qos="1"}'), 1);

  await client.endAsync();
  assert.equal(await agent.stop(), 0);
  assert.deepEqual(
    seqsByDevice(bufferDump(agent.configPath)).get('dev-bad'),
    [1],
    'the good message after the bad ones is stored',
  );
});
