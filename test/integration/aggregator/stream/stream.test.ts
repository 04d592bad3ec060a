import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startAggregator } from '../../../helpers/aggregator-process.js';
import { metricValue } from '../../../helpers/agent-process.js';
import { tempDir } from '../../../helpers/tmp.js';
import { metricsPayload, sendBatch } from '../../../helpers/uplink-client.js';
import { openStream } from '../../../helpers/stream-client.js';
import { AckStatus } from '../../../../protocol/uplink/messages.js';
import { Signal } from '../../../../protocol/otlp/signal.js';
import { LogsEncoder } from '../../../../protocol/otlp/logs-encoder.js';

const READ = 'viewer-token-0123456789';

test('the stream carries readings, events, online/offline changes and alerts, filtered by device, prefix, metric and kind', async (t) => {
  const dir = tempDir(t);
  const agg = await startAggregator(dir, {
    devices: { offline_after: '2s' },
    alerts: {
      evaluation_interval: '1s',
      missing: { enabled: false },
      rules: { name: 'Hot', metric: 'temp', op: '>', value: 30 },
    },
  });
  t.after(() => agg.kill9());
  const base = `ws://127.0.0.1:${agg.apiPort}/v1/stream`;
  const everything = await openStream(`${base}?events=true`);
  const pumps = await openStream(`${base}?device=pump-*&metric=temp`);
  const one = await openStream(`${base}?device=fan-1&kind=status`);
  const hello = await everything.next((m) => m.type === 'hello');
  assert.equal(hello.node, 'agg-test');
  assert.deepEqual(hello.filter.kinds, ['reading', 'status', 'alert', 'event']);

  const start = Date.now() - 3000;
  const grpc = `127.0.0.1:${agg.grpcPort}`;
  const sent = await sendBatch(grpc, { payload: metricsPayload(['pump-1', 'fan-1'], { temp: 35, hum: 50 }, 2, start) });
  assert.equal(sent.ack?.status, AckStatus.OK);
  const logs = new LogsEncoder({ gatewayId: 'test-gw' }).encode([
    {
      deviceId: 'pump-1',
      events: [{ ts: start, severityNumber: 17, severityText: 'ERROR', body: 'seal leak', attributes: ['zone', 3] }],
    },
  ]);
  assert.equal((await sendBatch(grpc, { seq: 2, signal: Signal.LOGS, payload: logs })).ack?.status, AckStatus.OK);

  const r = await everything.next((m) => m.type === 'reading' && m.device === 'pump-1' && m.seq === 2);
  assert.deepEqual(r, {
    type: 'reading',
    device: 'pump-1',
    ts: new Date(start + 1000).toISOString(),
    seq: 2,
    metrics: { temp: 35, hum: 50 },
  });
  const ev = await everything.next((m) => m.type === 'event');
  assert.deepEqual(ev, {
    type: 'event',
    device: 'pump-1',
    ts: new Date(start).toISOString(),
    severity: 'ERROR',
    body: 'seal leak',
    attributes: { zone: 3 },
  });
  // The event is kept on the owner too: GET /v1/devices/{id}/events.
  const stored = await agg.get('/v1/devices/pump-1/events?limit=10');
  assert.deepEqual(stored.body, {
    events: [{ ts: new Date(start).toISOString(), severity: 'ERROR', body: 'seal leak', attributes: { zone: 3 } }],
  });
  assert.equal((await agg.get('/v1/devices/pump-1/events?limit=0')).status, 400);
  assert.equal((await agg.get('/v1/devices/nobody/events')).status, 404);
  const alert = await everything.next((m) => m.type === 'alert' && m.alert.device_id === 'pump-1');
  assert.equal(alert.status, 'firing');
  assert.equal(alert.alert.alertname, 'Hot');
  const off = await one.next((m) => m.type === 'status' && m.online === false, 10_000);
  assert.equal(off.device, 'fan-1');
  await pumps.next((m) => m.type === 'reading' && m.seq === 2);

  // The filters held: pumps saw only pump-1's temp readings; one saw only fan-1's status changes.
  const kinds = (c: typeof pumps, type: string) => c.messages.filter((m) => m.type === type);
  assert.ok(kinds(pumps, 'reading').every((m) => m.device === 'pump-1' && Object.keys(m.metrics).join() === 'temp'));
  assert.equal(kinds(pumps, 'reading').length, 2);
  assert.equal(kinds(pumps, 'event').length, 0, 'events only on request');
  assert.ok(one.messages.every((m) => m.type === 'hello' || (m.type === 'status' && m.device === 'fan-1')));
  for (const c of [everything, pumps, one]) c.close();
});

test('a slow client never slows ingest: its messages are dropped, counted and announced, then it is closed with 4008', async (t) => {
  const dir = tempDir(t);
  const agg = await startAggregator(dir, { api: { stream: { queue: 100, slow_after: '2s' } } });
  t.after(() => agg.kill9());
  const slow = await openStream(`ws://127.0.0.1:${agg.apiPort}/v1/stream`);
  await slow.next((m) => m.type === 'hello');
  // The client stops reading: the kernel buffers fill, then the node's socket buffer, then its queue.
  (slow.ws as any)._socket.pause();
  const devices = Array.from({ length: 200 }, (_, i) => `dev-${i}`);
  const grpc = `127.0.0.1:${agg.grpcPort}`;
  const metrics = async () => (await agg.get('/metrics')).body as string;
  const t0 = Date.now();
  let sent = 0;
  let ok = 0;
  // Batches keep coming (2,000 readings each) until the node gives up on the client.
  while (metricValue(await metrics(), 'otlp_edge_aggregator_stream_closed_total{reason="too_slow"}') < 1) {
    assert.ok(Date.now() - t0 < 60_000, 'the slow client was never closed');
    for (let i = 0; i < 5; i++) {
      sent++;
      const r = await sendBatch(grpc, {
        seq: sent,
        payload: metricsPayload(devices, { a: 1, b: 2 }, 10, t0 - 3_600_000 + sent * 10_000, sent * 10),
      });
      if (r.ack?.status === AckStatus.OK) ok++;
    }
  }
  assert.equal(ok, sent, 'every batch was acknowledged while the client read nothing');
  const { body: dev } = await agg.get('/v1/devices/dev-7');
  assert.equal(dev.counts.received, sent * 10, 'every reading is in state');
  assert.ok(metricValue(await metrics(), 'otlp_edge_aggregator_stream_dropped_messages_total') > 0);
  // Reading again, it is told what it missed, and why it was closed.
  (slow.ws as any)._socket.resume();
  const closed = await slow.closed;
  assert.equal(closed.code, 4008, JSON.stringify(closed));
  assert.match(closed.reason, /too slow: \d+ messages dropped/);
  const dropped = slow.messages.find((m) => m.type === 'dropped');
  assert.ok(dropped && dropped.count > 0 && dropped.total >= dropped.count, JSON.stringify(dropped));
});

test('with API tokens the stream needs one (Bearer, Basic, or a one-use ticket), and the page too; connections are limited', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'api.tokens');
  writeFileSync(file, `${READ} read viewer\n`, { mode: 0o600 });
  const agg = await startAggregator(dir, { auth: { api_tokens_file: file }, api: { stream: { max_connections: 2 } } });
  t.after(() => agg.kill9());
  const http = `http://127.0.0.1:${agg.apiPort}`;
  const ws = `ws://127.0.0.1:${agg.apiPort}/v1/stream`;
  await assert.rejects(openStream(ws), (e: any) => e.status === 401 && /OTLPEDGE_API_UNAUTHENTICATED/.test(e.body));
  await assert.rejects(
    openStream(ws, { authorization: 'Bearer wrong-token-0123456789' }),
    (e: any) => e.status === 401,
  );
  const page = await fetch(`${http}/`);
  assert.equal(page.status, 401, 'the page is refused without a token');
  assert.match(page.headers.get('www-authenticate') ?? '', /^Basic /, 'so a browser asks for it');
  assert.equal((await fetch(`${http}/ui/app.js`)).status, 401);
  const basic = `Basic ${Buffer.from(`me:${READ}`).toString('base64')}`;
  const ok = await fetch(`${http}/`, { headers: { authorization: basic } });
  assert.equal(ok.status, 200);
  assert.match(await ok.text(), /<title>otlp-edge fleet<\/title>/);
  assert.match(ok.headers.get('content-security-policy') ?? '', /default-src 'self'/);

  const a = await openStream(ws, { authorization: `Bearer ${READ}` });
  assert.equal((await fetch(`${http}/v1/stream/tickets`, { method: 'POST' })).status, 401, 'tickets need a token too');
  const issued: any = await (
    await fetch(`${http}/v1/stream/tickets`, { method: 'POST', headers: { authorization: basic } })
  ).json();
  assert.match(issued.ticket, /^[A-Za-z0-9_-]{20,}$/);
  const b = await openStream(`${ws}?ticket=${issued.ticket}`);
  await b.next((m) => m.type === 'hello');
  await assert.rejects(
    openStream(`${ws}?ticket=${issued.ticket}`),
    (e: any) => e.status === 401 && /used or expired/.test(e.body),
  );
  // Two clients is the limit here.
  const third: any = await (
    await fetch(`${http}/v1/stream/tickets`, { method: 'POST', headers: { authorization: basic } })
  ).json();
  await assert.rejects(
    openStream(`${ws}?ticket=${third.ticket}`),
    (e: any) => e.status === 503 && /OTLPEDGE_API_STREAM_LIMIT/.test(e.body),
  );
  await assert.rejects(
    openStream(`${ws}?kind=spans`, { authorization: `Bearer ${READ}` }),
    (e: any) => e.status === 400 || e.status === 503,
  );
  a.close();
  b.close();
  await a.closed;
  await b.closed;
  await assert.rejects(
    openStream(`${ws}?kind=spans`, { authorization: `Bearer ${READ}` }),
    (e: any) => e.status === 400 && /kind: .*spans.*expected reading/.test(e.body),
  );
  const m = await (await fetch(`${http}/metrics`, { headers: { authorization: `Bearer ${READ}` } })).text();
  assert.ok(metricValue(m, 'otlp_edge_aggregator_stream_refused_total{reason="auth"}') >= 3);
  assert.equal(metricValue(m, 'otlp_edge_aggregator_stream_refused_total{reason="limit"}'), 1);
});
