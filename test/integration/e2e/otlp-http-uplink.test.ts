import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { startAggregator } from '../../helpers/aggregator-process.js';
import { metricValue, repoRoot, startAgent } from '../../helpers/agent-process.js';
import { pahoPublish } from '../../helpers/mosquitto.js';
import { waitFor } from '../../helpers/ports.js';
import { tempDir } from '../../helpers/tmp.js';
import { Compression, decompress } from '../../../protocol/compression.js';
import { decodeMetricsRequest } from '../../../protocol/otlp/decode.js';
import { metricsByDevice } from '../../helpers/otlp-readings.js';

const paho = join(repoRoot, 'test', 'helpers', 'paho_publish.py');

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('otlp_http uplink: batches reach an OTLP/HTTP endpoint as zstd, fall back to gzip when refused, and decode to the readings sent', async (t) => {
  const dir = tempDir(t);
  const received: { encoding: string; path: string; request: ReturnType<typeof decodeMetricsRequest> }[] = [];
  let refuseZstd = true;
  let throttleOnce = true;
  const server = createServer(async (req, res) => {
    const raw = await body(req);
    const encoding = String(req.headers['content-encoding'] ?? 'identity');
    if (encoding === 'zstd' && refuseZstd) {
      res.writeHead(415).end('zstd not supported');
      return;
    }
    if (throttleOnce) {
      throttleOnce = false;
      res.writeHead(503, { 'retry-after': '0' }).end();
      return;
    }
    const plain = decompress(
      raw,
      encoding === 'gzip' ? Compression.GZIP : encoding === 'zstd' ? Compression.ZSTD : Compression.NONE,
    );
    received.push({ encoding, path: req.url ?? '', request: decodeMetricsRequest(plain) });
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;

  const agent = await startAgent(dir, {
    uplink: { protocol: 'otlp_http', endpoints: [`http://127.0.0.1:${port}`], timeout: '2s' },
    batch: { max_delay: '50ms' },
  });
  t.after(() => agent.kill9());
  assert.equal(
    (await pahoPublish(paho, ['--port', String(agent.mqttPort), '--device', 'http-1', '--count', '10', '--qos', '1']))
      .acked.length,
    10,
  );
  await waitFor(
    'delivered over OTLP/HTTP',
    async () =>
      metricValue(await agent.metrics(), 'otlp_edge_agent_uplink_backlog_batches') === 0 && received.length > 0,
    15_000,
  );
  assert.ok(
    received.every((r) => r.encoding === 'gzip' && r.path === '/v1/metrics'),
    'after a 415 the agent switched to gzip',
  );
  const temps = metricsByDevice(received.map((r) => r.request))
    .get('http-1')!
    .get('temperature')!;
  // Batches in flight together may land in any order (one was answered 503 and resent): compare by time.
  assert.deepEqual(
    [...temps].sort((a, b) => (BigInt(a.ts) < BigInt(b.ts) ? -1 : 1)).map((p) => p.value),
    Array.from({ length: 10 }, (_, i) => 20 + i / 10),
  );
  assert.ok(
    metricValue(await agent.metrics(), 'otlp_edge_agent_uplink_batches_total{outcome="retry"}') >= 2,
    '415 and 503 were retried',
  );

  refuseZstd = false; // an endpoint that takes zstd gets it once a new agent starts
  const agent2 = await startAgent(join(dir, 'z'), {
    uplink: { protocol: 'otlp_http', endpoints: [`http://127.0.0.1:${port}`] },
    batch: { max_delay: '50ms' },
  });
  t.after(() => agent2.kill9());
  await pahoPublish(paho, ['--port', String(agent2.mqttPort), '--device', 'http-2', '--count', '3', '--qos', '1']);
  await waitFor('zstd delivery', () => received.some((r) => r.encoding === 'zstd'), 10_000);
});

test('otlp_http uplink: a refused token (401), a wrong path (404) or a 413 keep the backlog and retry it; only a 400 moves a batch aside', async (t) => {
  const dir = tempDir(t);
  const script = [401, 404, 413]; // the first three requests, then 200 (the token was fixed meanwhile)
  let answer = 0;
  const delivered: string[] = [];
  const server = createServer(async (req, res) => {
    await body(req);
    const status = answer || script.shift() || 200;
    if (status !== 200) {
      res.writeHead(status).end(`status ${status}`);
      return;
    }
    delivered.push(req.url ?? '');
    res.writeHead(200).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;
  const agent = await startAgent(dir, {
    uplink: { protocol: 'otlp_http', endpoints: [`http://127.0.0.1:${port}`], timeout: '2s', max_in_flight: 1 },
    batch: { max_delay: '50ms' },
  });
  t.after(() => agent.kill9());
  assert.equal(
    (await pahoPublish(paho, ['--port', String(agent.mqttPort), '--device', 'rot-1', '--count', '5', '--qos', '1']))
      .acked.length,
    5,
  );
  await waitFor(
    'backlog delivered after 401, 404 and 413',
    async () =>
      metricValue(await agent.metrics(), 'otlp_edge_agent_uplink_backlog_batches') === 0 && script.length === 0,
    30_000,
  );
  const m = await agent.metrics();
  assert.equal(
    metricValue(m, 'otlp_edge_agent_uplink_requests_total{outcome="failed"}'),
    3,
    'each refusal counted as a failure',
  );
  assert.equal(metricValue(m, 'otlp_edge_agent_uplink_batches_total{outcome="rejected"}'), 0, 'nothing moved aside');
  assert.match(agent.output(), /check uplink\.token/);
  assert.ok(delivered.length >= 1);

  answer = 400;
  await pahoPublish(paho, ['--port', String(agent.mqttPort), '--device', 'rot-2', '--count', '1', '--qos', '1']);
  await waitFor(
    'a 400 moves the batch aside',
    async () => metricValue(await agent.metrics(), 'otlp_edge_agent_uplink_batches_total{outcome="rejected"}') === 1,
    15_000,
  );
});

test("otlp_http uplink into the aggregator's own OTLP/HTTP receiver: the readings land in device state, seq accounting included", async (t) => {
  const dir = tempDir(t);
  const tokens = join(dir, 'agent-tokens');
  writeFileSync(tokens, 'gw-test otlp-http-token-1\n', { mode: 0o600 });
  const agg = await startAggregator(dir, { auth: { agent_tokens_file: tokens } });
  t.after(() => agg.kill9());
  const agent = await startAgent(dir, {
    uplink: { protocol: 'otlp_http', endpoints: [`http://127.0.0.1:${agg.otlpHttpPort}`], token: 'otlp-http-token-1' },
    batch: { max_delay: '50ms' },
  });
  t.after(() => agent.kill9());
  const pub = await pahoPublish(paho, [
    '--port',
    String(agent.mqttPort),
    '--device',
    'oh-1',
    '--count',
    '25',
    '--qos',
    '1',
  ]);
  assert.equal(pub.acked.length, 25);
  const dev = await waitFor('oh-1 in state', async () => {
    const r = await agg.get('/v1/devices/oh-1');
    return r.status === 200 && r.body.counts.received === 25 ? r.body : null;
  });
  assert.equal(dev.counts.missing, 0);
  assert.equal(dev.latest.humidity.value, 40 + 24);
});
