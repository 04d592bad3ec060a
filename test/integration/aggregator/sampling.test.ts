import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { metricValue, startAgent } from '../../helpers/agent-process.js';
import { startAggregator } from '../../helpers/aggregator-process.js';
import { OtlpHttpSink } from '../../helpers/otlp-sink.js';
import { waitFor } from '../../helpers/ports.js';
import { tempDir } from '../../helpers/tmp.js';
import { LogsEncoder } from '../../../protocol/otlp/logs-encoder.js';

const records = (sink: OtlpHttpSink) =>
  sink
    .of('logs')
    .flatMap((req: any) => req.resourceLogs)
    .flatMap((rl: any) =>
      rl.scopeLogs.flatMap((sl: any) => sl.logRecords.map((r: any) => ({ r, resource: rl.resource }))),
    );
const attr = (list: any[] | undefined, key: string) => (list ?? []).find((kv: any) => kv.key === key)?.value;

test('event sampling: MQTT events through an agent; errors all kept, the rest cut toward the tenant target and marked with their adjusted count', async (t) => {
  const dir = tempDir(t);
  const sink = new OtlpHttpSink();
  await sink.start();
  t.after(() => sink.stop());
  const tokens = join(dir, 'agents.tokens');
  writeFileSync(tokens, 'gw-s token-gw-s-0001 acme\nsdk-s token-sdk-s-001 acme\n');
  const agg = await startAggregator(dir, {
    auth: { agent_tokens_file: tokens },
    export: { endpoint: `http://127.0.0.1:${sink.port}`, batch: { max_delay: '50ms' } },
    processors: [{ sampling: { logs_per_second: 20, keep_severity_at_least: 'error', interval: '1s' } }],
  });
  t.after(() => agg.kill9());
  const agent = await startAgent(join(dir, 'agent'), {
    agent: { id: 'gw-s' },
    uplink: { endpoints: [`127.0.0.1:${agg.grpcPort}`], token: 'token-gw-s-0001' },
    batch: { max_delay: '50ms' },
  });
  t.after(() => agent.kill9());

  // 3 s of one device sending 200 info events/s and 4 errors/s: far over the 20/s target.
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${agent.mqttPort}`, { clientId: 'sampling-feeder' });
  let sent = 0;
  for (let tick = 0; tick < 30; tick++) {
    const events = Array.from({ length: 20 }, (_, i) => ({ severity: 'info', body: `info ${tick}.${i}` }));
    if (tick % 5 === 0) events.push(...[0, 1].map((i) => ({ severity: 'error', body: `error ${tick}.${i}` })));
    sent += events.length;
    await c.publishAsync('devices/ev-1/events', JSON.stringify(events), { qos: 1 });
    await new Promise((r) => setTimeout(r, 100));
  }
  await c.endAsync();
  const m = () => fetch(`http://127.0.0.1:${agg.apiPort}/metrics`).then((r) => r.text());
  const count = (text: string, outcome: string) =>
    metricValue(text, `otlp_edge_aggregator_sampling_records_total{tenant="acme",outcome="${outcome}"}`);
  await waitFor(
    'every event through sampling',
    async () => {
      const text = await m();
      return count(text, 'kept') + count(text, 'kept_severity') + count(text, 'sampled_out') === sent;
    },
    20_000,
  );
  const text = await m();
  assert.equal(count(text, 'kept_severity'), 12, 'every error kept');
  const kept = count(text, 'kept');
  assert.ok(kept > 0 && kept < 200, `${kept} of 600 info events kept (target 20/s over 3 s)`);
  assert.ok(metricValue(text, 'otlp_edge_aggregator_sampling_probability{tenant="acme"}') < 0.5);

  // The backend gets exactly what was kept: all errors, the sampled info events with their adjusted counts.
  await waitFor('exported', async () => records(sink).length === kept + 12, 20_000);
  const exported = records(sink);
  assert.equal(exported.filter((x: any) => x.r.severityNumber === 17).length, 12);
  const marked = exported.filter((x: any) => attr(x.r.attributes, 'sampling.adjusted_count') !== undefined);
  assert.ok(marked.length > 0);
  for (const x of marked) {
    assert.ok(attr(x.r.attributes, 'sampling.adjusted_count').doubleValue > 1);
    assert.notEqual(x.r.severityNumber, 17, 'errors are never marked');
  }
  // Re-weighted, the kept info events stand for about as many as were sent (600).
  const weighted = exported
    .filter((x: any) => x.r.severityNumber !== 17)
    .reduce((n: number, x: any) => n + (attr(x.r.attributes, 'sampling.adjusted_count')?.doubleValue ?? 1), 0);
  assert.ok(weighted > 400 && weighted < 800, `re-weighted count ${weighted}`);
  assert.equal(attr(exported[0].resource.attributes, 'tenant.id').stringValue, 'acme');
  // The device's recent events are what was kept.
  const events = (await agg.get('/v1/devices/ev-1/events')).body.events;
  assert.ok(events.some((e: { body: string }) => e.body.startsWith('error')));
  assert.ok(events.length <= kept + 12);

  // OTLP logs of the same tenant are sampled by the same rate: 200 info records in one request keep about
  // probability × 200, errors all.
  const before = await m();
  const otlp = new LogsEncoder({ gatewayId: 'sdk' }).encode([
    {
      deviceId: 'ev-2',
      events: Array.from({ length: 210 }, (_, i) => ({
        ts: Date.now(),
        severityNumber: i < 200 ? 9 : 17,
        severityText: i < 200 ? 'info' : 'error',
        body: `otlp ${i}`,
        attributes: null,
      })),
    },
  ]);
  const post = await fetch(`http://127.0.0.1:${agg.otlpHttpPort}/v1/logs`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-protobuf', authorization: 'Bearer token-sdk-s-001' },
    body: otlp,
  });
  assert.equal(post.status, 200);
  const after = await m();
  assert.equal(count(after, 'kept_severity') - count(before, 'kept_severity'), 10);
  const otlpKept = count(after, 'kept') - count(before, 'kept');
  assert.equal(otlpKept + count(after, 'sampled_out') - count(before, 'sampled_out'), 200);
  assert.ok(otlpKept < 120, `${otlpKept} of 200 kept`);
  const stored = (await agg.get('/v1/devices/ev-2/events?limit=100')).body.events;
  assert.equal(stored.length, otlpKept + 10, 'the device keeps what was kept');
});
