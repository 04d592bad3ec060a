import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { metricValue, repoRoot, startAgent } from '../../helpers/agent-process.js';
import { startAggregator } from '../../helpers/aggregator-process.js';
import { pahoPublish } from '../../helpers/mosquitto.js';
import { waitFor } from '../../helpers/ports.js';
import { createTestPki } from '../../helpers/tls.js';
import { tempDir } from '../../helpers/tmp.js';
import { metricsPayload, sendBatch } from '../../helpers/uplink-client.js';
import { AckStatus } from '../../../protocol/uplink/messages.js';
import * as grpc from '@grpc/grpc-js';

const paho = join(repoRoot, 'test', 'helpers', 'paho_publish.py');

test('agent tokens: none and a wrong one are refused with UNAUTHENTICATED and a clear reason; the right one delivers', async (t) => {
  const dir = tempDir(t);
  const tokens = join(dir, 'agents.tokens');
  writeFileSync(tokens, '# agent tokens\ngw-good  token-for-good-0001\n');
  const agg = await startAggregator(dir, { auth: { agent_tokens_file: tokens } });
  t.after(() => agg.kill9());
  const endpoint = `127.0.0.1:${agg.grpcPort}`;

  const none = await startAgent(join(dir, 'a'), {
    agent: { id: 'gw-none' },
    uplink: { endpoints: [endpoint], timeout: '2s' },
  });
  t.after(() => none.kill9());
  const wrong = await startAgent(join(dir, 'b'), {
    agent: { id: 'gw-wrong' },
    uplink: { endpoints: [endpoint], token: 'token-for-good-0001', timeout: '2s' },
  });
  t.after(() => wrong.kill9());
  const good = await startAgent(join(dir, 'c'), {
    agent: { id: 'gw-good' },
    uplink: { endpoints: [endpoint], token: 'token-for-good-0001', timeout: '2s' },
  });
  t.after(() => good.kill9());

  for (const [a, device] of [
    [none, 'tok-none'],
    [wrong, 'tok-wrong'],
    [good, 'tok-good'],
  ] as const) {
    assert.equal(
      (await pahoPublish(paho, ['--port', String(a.mqttPort), '--device', device, '--count', '3', '--qos', '1'])).acked
        .length,
      3,
    );
  }
  await waitFor(
    'good agent delivered',
    async () => (await agg.get('/v1/devices/tok-good')).body?.counts?.received === 3,
  );
  await waitFor(
    'refusals logged',
    async () =>
      /missing token/.test(none.output()) && /belongs to agent 'gw-good', not 'gw-wrong'/.test(wrong.output()),
  );
  assert.match(none.output(), /refused the agent's token/);
  assert.ok(metricValue(await none.metrics(), 'otlp_edge_agent_uplink_batches_total{outcome="failed"}') >= 1);
  assert.equal(
    metricValue(await none.metrics(), 'otlp_edge_agent_uplink_backlog_batches') >= 1,
    true,
    'refused batches stay stored',
  );
  assert.equal((await agg.get('/v1/devices/tok-none')).status, 404);
  assert.equal((await agg.get('/v1/devices/tok-wrong')).status, 404);
  // Both refusals are counted by the node (its counter may trail the agents' log lines a moment).
  await waitFor('both refusals counted by the node', async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${agg.apiPort}/metrics`)).text();
    return metricValue(metrics, 'otlp_edge_aggregator_uplink_batches_total{outcome="unauthenticated"}') >= 2;
  });
});

test('TLS: an agent with the CA delivers; a plaintext agent against the TLS port is refused and keeps its data', async (t) => {
  const dir = tempDir(t);
  const pki = await createTestPki();
  t.after(() => pki.cleanup());
  const agg = await startAggregator(dir, {
    tls: { enabled: true, cert: pki.server.certFile, key: pki.server.keyFile },
  });
  t.after(() => agg.kill9());
  const endpoint = `127.0.0.1:${agg.grpcPort}`;
  const secure = await startAgent(join(dir, 's'), {
    agent: { id: 'gw-tls' },
    uplink: { endpoints: [endpoint], tls: { enabled: true, ca: pki.caFile }, timeout: '2s' },
  });
  t.after(() => secure.kill9());
  const plain = await startAgent(join(dir, 'p'), {
    agent: { id: 'gw-plain' },
    uplink: { endpoints: [endpoint], timeout: '2s' },
  });
  t.after(() => plain.kill9());

  await pahoPublish(paho, ['--port', String(secure.mqttPort), '--device', 'tls-1', '--count', '5', '--qos', '1']);
  await pahoPublish(paho, ['--port', String(plain.mqttPort), '--device', 'plain-1', '--count', '5', '--qos', '1']);
  await waitFor('TLS agent delivered', async () => (await agg.get('/v1/devices/tls-1')).body?.counts?.received === 5);
  await waitFor(
    'plaintext agent failed',
    async () => metricValue(await plain.metrics(), 'otlp_edge_agent_uplink_batches_total{outcome="failed"}') >= 1,
  );
  assert.match(plain.output(), /aggregator unavailable|UNAVAILABLE|did not answer/);
  assert.equal((await agg.get('/v1/devices/plain-1')).status, 404);
  assert.ok(metricValue(await plain.metrics(), 'otlp_edge_agent_uplink_backlog_batches') >= 1);
});

test('agent tokens are read again on SIGHUP: a new agent is let in, a removed one refused; a broken file keeps the old tokens', async (t) => {
  const dir = tempDir(t);
  const tokens = join(dir, 'agents.tokens');
  writeFileSync(tokens, 'gw-old token-of-old-gateway\n');
  const agg = await startAggregator(dir, { auth: { agent_tokens_file: tokens } });
  t.after(() => agg.kill9());
  const at = `127.0.0.1:${agg.grpcPort}`;
  const send = (agentId: string, token: string, seq: number) =>
    sendBatch(at, { agentId, seq, payload: metricsPayload([`${agentId}-dev`], { t: 1 }), points: 2 }, token);
  assert.equal((await send('gw-new', 'token-of-new-gateway', 1)).err?.code, grpc.status.UNAUTHENTICATED);
  assert.equal((await send('gw-old', 'token-of-old-gateway', 1)).ack?.status, AckStatus.OK);

  writeFileSync(tokens, 'gw-new token-of-new-gateway\n');
  agg.child.kill('SIGHUP');
  await waitFor(
    'the new token is in force',
    async () => (await send('gw-new', 'token-of-new-gateway', 2)).ack?.status === AckStatus.OK,
  );
  assert.equal(
    (await send('gw-old', 'token-of-old-gateway', 2)).err?.code,
    grpc.status.UNAUTHENTICATED,
    'the removed agent is refused',
  );

  writeFileSync(tokens, 'gw-new short\n');
  agg.child.kill('SIGHUP');
  await waitFor('the failed reload is logged', () =>
    /token reload failed; the previous tokens stay in force/.test(agg.output()),
  );
  assert.equal((await send('gw-new', 'token-of-new-gateway', 3)).ack?.status, AckStatus.OK);
});
