import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startAggregator } from '../../../helpers/aggregator-process.js';
import { metricValue } from '../../../helpers/agent-process.js';
import { Alertmanager, startWebhook } from '../../../helpers/alertmanager.js';
import { waitFor } from '../../../helpers/ports.js';
import { tempDir } from '../../../helpers/tmp.js';
import { metricsPayload, sendBatch } from '../../../helpers/uplink-client.js';
import { MetricsEncoder } from '../../../../protocol/otlp/metrics-encoder.js';
import { AckStatus } from '../../../../protocol/uplink/messages.js';

test('a real Alertmanager receives firing and resolved alerts: offline, back online, threshold rule', async (t) => {
  const dir = tempDir(t);
  const am = new Alertmanager(dir);
  await am.start();
  t.after(() => am.stop());
  const agg = await startAggregator(dir, {
    devices: { offline_after: '3s' },
    alerts: {
      evaluation_interval: '1s',
      labels: { cluster: 'test-eu' },
      rules: {
        name: 'HighTemperature',
        metric: 'temp',
        devices: 'boiler-*',
        op: '>',
        value: 90,
        for: '1s',
        severity: 'critical',
      },
      alertmanager: { url: am.url },
    },
  });
  t.after(() => agg.kill9());
  const grpc = `127.0.0.1:${agg.grpcPort}`;
  const payload = (temp: number, seq: number) =>
    new MetricsEncoder({ gatewayId: 'gw-north', attributes: { site: 'plant-7' } }).encode([
      { deviceId: 'boiler-1', readings: [{ ts: Date.now(), seq, names: ['temp'], values: [temp], attributes: null }] },
    ]);
  let seq = 0;
  const send = (temp: number) => {
    seq++;
    return sendBatch(grpc, { seq, payload: payload(temp, seq) });
  };
  assert.equal((await send(95)).ack?.status, AckStatus.OK);
  // Keep it online and hot: the rule fires after `for`.
  const keepAlive = setInterval(() => void send(95), 1000);
  const hot = await waitFor(
    'HighTemperature at Alertmanager',
    async () => (await am.alerts()).find((a) => a.labels.alertname === 'HighTemperature'),
    20_000,
  );
  assert.deepEqual(
    { ...hot.labels },
    {
      alertname: 'HighTemperature',
      device_id: 'boiler-1',
      severity: 'critical',
      cluster: 'test-eu',
      site: 'plant-7',
      otlp_edge_gateway_id: 'gw-north',
      service_name: 'iot-device',
    },
  );
  assert.match(hot.annotations.summary, /temp of boiler-1 is 95/);
  assert.equal(hot.status.state, 'active');
  assert.match(hot.generatorURL, /#\/devices\/boiler-1$/);
  // It cools down: resolved at Alertmanager.
  clearInterval(keepAlive);
  assert.equal((await send(20)).ack?.status, AckStatus.OK);
  await waitFor(
    'HighTemperature resolved',
    async () => !(await am.alerts()).some((a) => a.labels.alertname === 'HighTemperature'),
    20_000,
  );
  // Silent past offline_after: DeviceOffline fires; data again: it resolves.
  const off = await waitFor(
    'DeviceOffline at Alertmanager',
    async () => (await am.alerts()).find((a) => a.labels.alertname === 'DeviceOffline'),
    20_000,
  );
  assert.equal(off.labels.device_id, 'boiler-1');
  assert.equal(off.labels.site, 'plant-7');
  const listed = (await agg.get('/v1/alerts')).body.alerts;
  assert.deepEqual(
    listed.map((a: any) => [a.alertname, a.device_id, a.state]),
    [['DeviceOffline', 'boiler-1', 'firing']],
  );
  assert.equal((await send(20)).ack?.status, AckStatus.OK);
  await waitFor(
    'DeviceOffline resolved',
    async () => !(await am.alerts()).some((a) => a.labels.alertname === 'DeviceOffline'),
    20_000,
  );
  assert.deepEqual(await am.alerts(), [], 'nothing left unresolved');
  const m = (await agg.get('/metrics')).body as string;
  assert.ok(
    metricValue(m, 'otlp_edge_aggregator_alert_notifications_total{receiver="alertmanager",outcome="ok"}') >= 4,
  );
  assert.equal(
    metricValue(m, 'otlp_edge_aggregator_alert_changes_total{alertname="DeviceOffline",status="resolved"}'),
    1,
  );
});

test('webhooks get signed JSON changes they asked for, retried with backoff while the receiver fails', async (t) => {
  const dir = tempDir(t);
  const hook = await startWebhook(2);
  t.after(() => hook.close());
  const secret = join(dir, 'hook.secret');
  writeFileSync(secret, 'hook-secret-0123456789\n', { mode: 0o600 });
  const all = await startWebhook();
  t.after(() => all.close());
  const agg = await startAggregator(dir, {
    devices: { offline_after: '2s' },
    alerts: {
      evaluation_interval: '1s',
      webhooks: [{ url: hook.url, secret_file: secret, events: ['device_offline', 'device_online'] }, { url: all.url }],
    },
  });
  t.after(() => agg.kill9());
  const grpc = `127.0.0.1:${agg.grpcPort}`;
  assert.equal(
    (await sendBatch(grpc, { payload: metricsPayload(['w1'], { t: 1 }, 1, Date.now()) })).ack?.status,
    AckStatus.OK,
  );
  await waitFor('the offline change delivered after two failures', async () => hook.requests.length >= 1, 20_000);
  assert.ok(hook.attempts() >= 3);
  // A gap in seq: the missing alert goes to the webhook that takes every event, not to the first.
  assert.equal(
    (await sendBatch(grpc, { seq: 2, payload: metricsPayload(['w1'], { t: 1 }, 1, Date.now(), 10) })).ack?.status,
    AckStatus.OK,
  );
  await waitFor(
    'back online delivered',
    async () => hook.requests.some((r) => r.body.includes('device_online')),
    20_000,
  );
  const first = hook.requests[0];
  const sig = createHmac('sha256', 'hook-secret-0123456789').update(first.body).digest('hex');
  assert.equal(first.headers['x-otlp-edge-signature'], `sha256=${sig}`);
  assert.equal(first.headers['content-type'], 'application/json');
  const body = JSON.parse(first.body);
  assert.equal(body.version, 1);
  assert.equal(body.node, 'agg-test');
  assert.deepEqual(
    body.changes.map((c: any) => [c.status, c.event, c.alert.alertname, c.alert.device_id]),
    [['firing', 'device_offline', 'DeviceOffline', 'w1']],
  );
  const events = hook.requests.flatMap((r) => JSON.parse(r.body).changes.map((c: any) => c.event));
  assert.ok(!events.includes('missing'), 'this webhook did not ask for missing');
  await waitFor(
    'the other webhook saw the missing alert',
    async () => all.requests.some((r) => JSON.parse(r.body).changes.some((c: any) => c.event === 'missing')),
    20_000,
  );
  assert.equal(all.requests[0].headers['x-otlp-edge-signature'], undefined, 'no secret, no signature');
  const m = (await agg.get('/metrics')).body as string;
  assert.equal(
    metricValue(m, 'otlp_edge_aggregator_alert_notifications_total{receiver="webhook-0",outcome="retry"}'),
    2,
  );
});
