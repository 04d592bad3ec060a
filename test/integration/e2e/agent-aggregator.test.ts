import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { metricValue, repoRoot, startAgent } from '../../helpers/agent-process.js';
import { startAggregator } from '../../helpers/aggregator-process.js';
import { pahoPublish } from '../../helpers/mosquitto.js';
import { waitFor } from '../../helpers/ports.js';
import { tempDir } from '../../helpers/tmp.js';

const paho = join(repoRoot, 'test', 'helpers', 'paho_publish.py');
const minute = (ms: number) => Math.floor(ms / 60_000) * 60_000;

test('paho devices → agent → aggregator: the API shows latest values, rollups and exact counts', async (t) => {
  const dir = tempDir(t);
  const agg = await startAggregator(dir);
  t.after(() => agg.kill9());
  const agent = await startAgent(dir, {
    uplink: { endpoints: [`127.0.0.1:${agg.grpcPort}`] },
    batch: { max_delay: '50ms' },
  });
  t.after(() => agent.kill9());

  const devices = ['e2e-a', 'e2e-b', 'e2e-c'];
  const results = await Promise.all(
    devices.map((d, i) =>
      pahoPublish(paho, [
        '--port',
        String(agent.mqttPort),
        '--device',
        d,
        '--count',
        String(40 + i * 10),
        '--qos',
        '1',
      ]),
    ),
  );
  results.forEach((r, i) => assert.equal(r.acked.length, 40 + i * 10));

  for (const [i, d] of devices.entries()) {
    const n = 40 + i * 10;
    const res = await waitFor(
      `${d} fully received`,
      async () => {
        const r = await agg.get(`/v1/devices/${d}`);
        return r.status === 200 && r.body.counts.received === n ? r : null;
      },
      15_000,
    );
    const body = res.body;
    assert.deepEqual(body.counts, { received: n, duplicates: 0, missing: 0 });
    assert.equal(body.online, true);
    assert.equal(body.owner, 'agg-test');
    const last = n - 1;
    assert.deepEqual(body.latest.temperature, {
      value: 20 + last / 10,
      ts: new Date(1732280000000 + last * 1000).toISOString(),
    });
    assert.equal(body.latest.humidity.value, 40 + last);

    // Rollups: readings are 1 s apart from 1732280000000, so each minute holds up to 60 of them.
    const series = await agg.get(`/v1/devices/${d}/series?metric=humidity&from=1732279000000&to=1732290000000`);
    assert.equal(series.status, 200);
    const expected = new Map<number, number[]>();
    for (let s = 0; s < n; s++) {
      const ts = 1732280000000 + s * 1000;
      expected.set(minute(ts), [...(expected.get(minute(ts)) ?? []), 40 + s]);
    }
    assert.deepEqual(
      series.body.points,
      [...expected].map(([start, vals]) => ({
        start: new Date(start).toISOString(),
        min: Math.min(...vals),
        max: Math.max(...vals),
        sum: vals.reduce((a, b) => a + b, 0),
        count: vals.length,
        last: vals[vals.length - 1],
      })),
    );
    assert.equal(series.body.resolution, '1m', 'only minutes are held: the finest answer');
    // Asked for hours: the same points merged per hour.
    const hourly = await agg.get(
      `/v1/devices/${d}/series?metric=humidity&from=1732279000000&to=1732290000000&resolution=1h`,
    );
    assert.equal(hourly.body.resolution, '1h');
    const all = [...expected.values()].flat();
    assert.equal(
      hourly.body.points.reduce((n: number, p: { count: number }) => n + p.count, 0),
      all.length,
    );
    assert.equal(
      hourly.body.points.reduce((n: number, p: { sum: number }) => n + p.sum, 0),
      all.reduce((a, b) => a + b, 0),
    );
    assert.ok(hourly.body.points.every((p: { start: string }) => p.start.endsWith(':00:00.000Z')));
    const bad = await agg.get(`/v1/devices/${d}/series?metric=humidity&resolution=5m`);
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /resolution: expected 1m, 1h or 1d, got "5m"/);
  }

  const list = await agg.get('/v1/devices?limit=2');
  assert.deepEqual(
    list.body.devices.map((d: { id: string }) => d.id),
    ['e2e-a', 'e2e-b'],
  );
  assert.equal(list.body.next, 'e2e-b');
  const rest = await agg.get(`/v1/devices?limit=2&cursor=${list.body.next}`);
  assert.deepEqual(
    rest.body.devices.map((d: { id: string }) => d.id),
    ['e2e-c'],
  );
  assert.equal(rest.body.next, null);

  assert.equal((await agg.get('/v1/devices/nope')).status, 404);
  assert.equal((await agg.get('/v1/devices/nope')).body.error.code, 'OTLPEDGE_API_DEVICE_NOT_FOUND');
  const ring = await agg.get('/v1/ring');
  assert.equal(ring.body.members.length, 1);
  assert.equal(ring.body.members[0].id, 'agg-test');
  assert.equal(ring.body.members[0].share, 1);

  const am = await agent.metrics();
  assert.ok(metricValue(am, 'otlp_edge_agent_uplink_batches_total{outcome="ok"}') > 0);
  await waitFor(
    'agent backlog drained',
    async () => metricValue(await agent.metrics(), 'otlp_edge_agent_uplink_backlog_batches') === 0,
  );
});
