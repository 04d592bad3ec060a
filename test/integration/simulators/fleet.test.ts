import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTlsServer } from 'node:tls';
import { Writable } from 'node:stream';
import { Aedes, type AedesOptions } from 'aedes';
import { Decoder } from 'cbor-x';
import { connectAsync, type MqttClient } from 'mqtt';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { Fleet, type FleetOptions } from '../../../simulators/fleet/fleet.js';
import { runFleetCommand } from '../../../simulators/fleet/cli.js';
import { isValidId } from '../../../protocol/ids.js';
import { waitFor } from '../../helpers/ports.js';
import { startMosquitto } from '../../helpers/mosquitto.js';
import { tempDir } from '../../helpers/tmp.js';
import { createTestPki } from '../../helpers/tls.js';

type T = Parameters<typeof tempDir>[0];

interface Rig {
  url: string;
  broker: Aedes;
  /** server-side sockets, to cut connections */
  sockets: Set<Socket>;
}

/** A bare aedes broker on 127.0.0.1 (port 0), closed when the test ends. */
async function rig(t: T, options: AedesOptions = {}): Promise<Rig> {
  const broker = await Aedes.createBroker(options);
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    broker.handle(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    server.close();
  });
  return { url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`, broker, sockets };
}

interface Received {
  topic: string;
  payload: Buffer;
  contentType?: string;
}

let observers = 0;

/** A plain MQTT.js client subscribed to every device's telemetry and events, as an agent in client mode would be. */
async function observe(t: T, url: string, qos: 0 | 1 = 1, protocolVersion: 4 | 5 = 4): Promise<Received[]> {
  const got: Received[] = [];
  const c: MqttClient = await connectAsync(url, {
    clientId: `observer-${++observers}`,
    protocolVersion,
    reconnectPeriod: 0,
  });
  t.after(() => c.endAsync(true));
  c.on('message', (topic, payload, packet) =>
    got.push({ topic, payload, contentType: packet.properties?.contentType }),
  );
  await c.subscribeAsync(['devices/+/telemetry', 'devices/+/events'], { qos });
  return got;
}

/** Starts a fleet that is stopped when the test ends, whatever happens. */
async function startFleet(t: T, options: FleetOptions): Promise<Fleet> {
  const fleet = new Fleet({ eventRate: 0, reconnectPeriod: 100, drainTimeout: 2000, ...options });
  t.after(async () => {
    await fleet.stop();
  });
  await fleet.start();
  return fleet;
}

// Timestamps are CBOR uint64 (preferred serialization), which cbor-x returns as BigInt unless told otherwise, as the
// agent's decoder tells it. int64AsNumber is read by cbor-x but missing from its typings.
const cbor = new Decoder({ mapsAsObjects: true, useRecords: false, int64AsNumber: true } as ConstructorParameters<
  typeof Decoder
>[0]);
const decodeCbor = (b: Buffer): unknown => cbor.decode(b);
const decode = (payload: Buffer): unknown =>
  payload[0] === 0x7b || payload[0] === 0x5b ? JSON.parse(payload.toString('utf8')) : decodeCbor(payload);

/** Readings per device, in arrival order. */
function readingsByDevice(got: Received[]): Map<string, Record<string, unknown>[]> {
  const by = new Map<string, Record<string, unknown>[]>();
  for (const m of got) {
    const [, id, kind] = m.topic.split('/');
    if (kind !== 'telemetry') continue;
    const v = decode(m.payload);
    const list = by.get(id) ?? [];
    list.push(...((Array.isArray(v) ? v : [v]) as Record<string, unknown>[]));
    by.set(id, list);
  }
  return by;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

test('a subscriber receives exactly what the fleet sent, in every encoding, shape and timestamp format', async (t) => {
  const { url } = await rig(t);
  const devices = 3;
  const count = 4;
  for (const encoding of ['json', 'cbor'] as const) {
    for (const shape of ['flat', 'explicit'] as const) {
      for (const tsFormat of ['ms', 'rfc3339'] as const) {
        const got = await observe(t, url);
        const before = Date.now();
        const fleet = new Fleet({
          url,
          devices,
          count,
          rate: 600,
          qos: 1,
          encoding,
          shape,
          tsFormat,
          eventRate: 0,
          prefix: 'dev-',
        });
        await fleet.start();
        await fleet.finished;
        const summary = await fleet.stop();
        const what = `${encoding}/${shape}/${tsFormat}`;
        await waitFor(`${what}: all messages at the subscriber`, () => got.length === devices * count, 3000, 10);

        assert.equal(summary.sent, devices * count, what);
        assert.equal(summary.acked, summary.sent, `${what}: every QoS 1 message acked`);
        assert.equal(summary.unconfirmed, 0);
        const by = readingsByDevice(got);
        assert.deepEqual([...by.keys()].sort(), ['dev-0', 'dev-1', 'dev-2'], what);
        for (const [id, readings] of by) {
          assert.ok(isValidId(id));
          assert.deepEqual(
            readings.map((r) => r.seq),
            range(count),
            `${what}: ${id} seqs`,
          );
          assert.deepEqual(fleet.ackedSeqs(id), range(count));
          for (const r of readings) {
            const ts = tsFormat === 'ms' ? (r.ts as number) : Date.parse(r.ts as string);
            if (tsFormat === 'ms') assert.equal(typeof r.ts, 'number');
            else assert.match(r.ts as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
            assert.ok(ts >= before - 1000 && ts <= Date.now(), `${what}: ts ${String(r.ts)}`);
            const metrics = (shape === 'flat' ? r : r.metrics) as Record<string, unknown>;
            const fw = shape === 'flat' ? r.fw : (r.attributes as Record<string, unknown>).fw;
            assert.equal(fw, '1.4.2');
            for (const name of ['temperature', 'humidity', 'battery', 'pulses'])
              assert.equal(typeof metrics[name], 'number', `${what}: ${name}`);
            assert.equal(typeof metrics.door_open, 'boolean');
          }
        }
      }
    }
  }
});

test('readings-per-message sends arrays, seqs run on across messages, and events go to the events topic', async (t) => {
  const { url } = await rig(t);
  const got = await observe(t, url);
  const fleet = await startFleet(t, { url, devices: 2, count: 3, readingsPerMessage: 4, rate: 400, eventRate: 1 });
  await fleet.finished;
  const s = await fleet.stop();
  // eventRate 1: one event per reading
  await waitFor('telemetry and events', () => got.length === 2 * 3 + 2 * 3 * 4, 3000, 10);
  assert.deepEqual(
    { sent: s.sent, readings: s.readings, events: s.events },
    { sent: 6, readings: { sent: 24, acked: 24 }, events: { sent: 24, acked: 24 } },
  );
  for (const [, readings] of readingsByDevice(got))
    assert.deepEqual(
      readings.map((r) => r.seq),
      range(12),
    );
  const events = got
    .filter((m) => m.topic.endsWith('/events'))
    .map((m) => decode(m.payload) as { ts: number; severity: string; body: { code: string; seq: number } });
  assert.equal(events.length, 24);
  for (const e of events) {
    assert.equal(typeof e.ts, 'number');
    assert.ok(['info', 'warn', 'error'].includes(e.severity));
    assert.match(e.body.code, /^[A-Z_]+$/);
  }
  // a message's readings are spread over the time it covers: 2 devices at 400 readings/s = one reading per 5 ms each
  const first = (decode(got.find((m) => m.topic.endsWith('/telemetry'))!.payload) as { ts: number }[]).map((r) => r.ts);
  assert.deepEqual(
    first.map((ts) => ts - first[0]),
    [0, 5, 10, 15],
  );
});

test('with a duration the fleet publishes at its rate, spread evenly over the devices, then stops', async (t) => {
  const { url } = await rig(t);
  const fleet = await startFleet(t, { url, devices: 4, rate: 200, duration: 0.5 });
  await fleet.finished;
  const s = await fleet.stop();
  // publishing began with the first connection, the half second with the last one
  assert.ok(s.elapsedMs >= 500 && s.sent >= 90, `sent ${s.sent} in ${s.elapsedMs} ms at 200/s`);
  assert.ok(Math.abs(s.rate.achieved - 200) < 30, `achieved ${s.rate.achieved}/s`);
  const counts = [...s.perDevice.values()].map((d) => d.sent);
  // equal turns; a device that connected a few ms after the others missed the turns before it connected
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 5, `per device: ${counts.join(', ')}`);
  assert.equal(s.acked, s.sent);
});

test('QoS 0: every message reaches the subscriber and nothing is counted as acked', async (t) => {
  const { url } = await rig(t);
  const got = await observe(t, url, 0);
  const fleet = await startFleet(t, { url, devices: 5, count: 6, rate: 1000, qos: 0, encoding: 'cbor' });
  await fleet.finished;
  const s = await fleet.stop();
  await waitFor('QoS 0 messages', () => got.length === 30, 3000, 10);
  assert.equal(s.sent, 30);
  assert.equal(s.acked, 0);
  assert.equal(s.unconfirmed, 0);
  for (const [, readings] of readingsByDevice(got))
    assert.deepEqual(
      readings.map((r) => r.seq),
      range(6),
    );
});

test('a device with maxInFlight unacked messages delays its next ones, counts them behind, and sends them once acks return', async (t) => {
  let hold = true;
  const held: (() => void)[] = [];
  const { url } = await rig(t, {
    authorizePublish: (_client, _packet, done) => (hold ? held.push(() => done(null)) : done(null)),
  });
  const fleet = await startFleet(t, { url, devices: 1, count: 8, rate: 500, maxInFlight: 2 });
  await waitFor('two messages held by the broker', () => held.length === 2, 3000, 5);
  await new Promise((r) => setTimeout(r, 30)); // several more turns pass while the device is full
  let totals = fleet.totals();
  assert.equal(totals.sent, 2, 'no third message while two are unacked');
  assert.ok(totals.behind >= 2 && totals.owed >= 2, `behind ${totals.behind}, owed ${totals.owed}`);
  hold = false;
  for (const release of held.splice(0)) release();
  await fleet.finished;
  const s = await fleet.stop();
  assert.equal(s.sent, 8, 'the delayed messages were sent, none skipped');
  assert.equal(s.acked, 8);
  assert.deepEqual(fleet.ackedSeqs('sim-0'), range(8));
  totals = fleet.totals();
  assert.equal(totals.owed, 0);
});

test('after the broker drops every connection the devices reconnect, seqs run on without a gap and unacked messages are resent', async (t) => {
  const { url, sockets, broker } = await rig(t);
  let connections = 0;
  broker.on('client', (c) => c.id.startsWith('sim-') && connections++);
  const seen = new Map<string, Set<number>>();
  broker.on('publish', (packet, client) => {
    if (!client) return;
    const seqs = seen.get(client.id) ?? new Set<number>();
    seqs.add((JSON.parse(String(packet.payload)) as { seq: number }).seq);
    seen.set(client.id, seqs);
  });
  const fleet = await startFleet(t, { url, devices: 4, count: 30, rate: 800, reconnectPeriod: 50 });
  await waitFor('some messages', () => fleet.totals().sent >= 20, 3000, 5);
  const sentBefore = fleet.totals().sent;
  for (const s of sockets) s.destroy();
  await fleet.finished;
  assert.ok(sentBefore < 120, 'the cut came mid-run');
  assert.equal(connections, 8, 'every device connected twice');
  assert.equal(fleet.connected, 4);
  const s = await fleet.stop();
  assert.equal(s.sent, 120);
  assert.equal(s.readings.sent, 120);
  for (const [id, record] of s.perDevice) {
    assert.equal(record.sent, 30, id);
    // Acked seqs are a subset of 0..29 in order; those lost with the connection are unconfirmed, not acked.
    const acked = fleet.ackedSeqs(id);
    assert.deepEqual(
      acked,
      [...new Set(acked)].sort((a, b) => a - b),
    );
    assert.ok(acked.every((seq) => seq >= 0 && seq < 30));
    assert.equal(record.acked, acked.length);
  }
  assert.equal(s.acked + s.unconfirmed, s.sent);
  // MQTT.js resends what was unacked when the connection dropped, so the broker has every seq (some maybe twice).
  for (const [id, seqs] of seen)
    assert.deepEqual(
      [...seqs].sort((a, b) => a - b),
      range(30),
      id,
    );
  assert.equal(seen.size, 4);
  assert.equal(s.acked, 120, 'the resent messages were acked in the end');
});

test('a device watching its errors topic counts and records what the agent publishes there', async (t) => {
  const { url, broker } = await rig(t);
  const subscribed = new Set<string>();
  broker.on('subscribe', (subs, client) => subs.forEach((s) => subscribed.add(`${client?.id} ${s.topic}`)));
  const fleet = await startFleet(t, { url, devices: 2, rate: 2, watchErrors: true });
  await waitFor('errors topic subscribed', () => subscribed.has('sim-1 devices/sim-1/errors'), 3000, 5);
  const report = '{"code":"OTLPEDGE_PAYLOAD_BAD_JSON","message":"payload is not valid JSON"}';
  broker.publish(
    { cmd: 'publish', topic: 'devices/sim-1/errors', payload: Buffer.from(report), qos: 0, retain: false, dup: false },
    () => undefined,
  );
  await waitFor('rejection counted', () => fleet.totals().rejections === 1, 3000, 5);
  const s = await fleet.stop();
  assert.equal(s.perDevice.get('sim-1')!.rejections, 1);
  assert.equal(s.perDevice.get('sim-0')!.rejections, 0);
  assert.deepEqual(s.lastRejections, [{ deviceId: 'sim-1', message: report }]);
});

test('devices connect over WebSocket (ws://)', async (t) => {
  const broker = await Aedes.createBroker();
  const http = createHttpServer();
  const wss = new WebSocketServer({ server: http });
  wss.on('connection', (ws) => broker.handle(createWebSocketStream(ws) as never));
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  t.after(async () => {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    wss.close();
    http.close();
  });
  const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const fleet = await startFleet(t, { url, devices: 2, count: 3, rate: 300 });
  await fleet.finished;
  const s = await fleet.stop();
  assert.equal(s.acked, 6);
  assert.equal(s.neverConnected, 0);
});

test('over mqtts:// devices verify the broker with --ca, and without it refuse an unknown certificate', async (t) => {
  const pki = await createTestPki();
  t.after(() => pki.cleanup());
  const broker = await Aedes.createBroker();
  const server = createTlsServer({ key: pki.server.key, cert: pki.server.cert }, broker.handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(async () => {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    server.close();
  });
  const url = `mqtts://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const stdout = capture();
  const stderr = capture();
  const code = await runFleetCommand(
    ['--url', url, '--ca', pki.caFile, '--devices', '2', '--count', '2', '--rate', '200', '--quiet', '--json'],
    { stdout, stderr },
  );
  assert.equal(code, 0, stderr.text());
  assert.equal(JSON.parse(stdout.text()).acked, 4);

  const unverified = await startFleet(t, { url, devices: 2, count: 1 });
  const s = await unverified.stop();
  assert.equal(s.neverConnected, 2);
  assert.match(s.lastError ?? '', /certificate/i);

  const insecure = await startFleet(t, { url, devices: 1, count: 1, rejectUnauthorized: false });
  await insecure.finished;
  assert.equal((await insecure.stop()).acked, 1);
});

test('with MQTT 5 every message carries its content type', async (t) => {
  const mosquitto = await startMosquitto(tempDir(t));
  t.after(() => mosquitto.stop());
  const url = `mqtt://127.0.0.1:${mosquitto.port}`;
  for (const encoding of ['json', 'cbor'] as const) {
    const got = await observe(t, url, 1, 5);
    const fleet = await startFleet(t, {
      url,
      devices: 2,
      count: 2,
      rate: 200,
      protocolVersion: 5,
      encoding,
      prefix: `${encoding}-`,
    });
    await fleet.finished;
    assert.equal((await fleet.stop()).acked, 4);
    await waitFor(
      'MQTT 5 messages',
      () => got.filter((m) => m.topic.startsWith(`devices/${encoding}-`)).length === 4,
      3000,
      10,
    );
    for (const m of got.filter((x) => x.topic.startsWith(`devices/${encoding}-`)))
      assert.equal(m.contentType, `application/${encoding}`);
  }
});

/** Collects what a command writes. */
function capture(): Writable & { text: () => string } {
  const chunks: string[] = [];
  const w = new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) }) as Writable & { text: () => string };
  w.text = () => chunks.join('');
  return w;
}

test('otlp-edge-sim fleet --help names every flag and exits 0', async () => {
  const stdout = capture();
  assert.equal(await runFleetCommand(['--help'], { stdout, stderr: capture() }), 0);
  for (const flag of [
    '--url',
    '--devices',
    '--rate',
    '--qos',
    '--encoding',
    '--shape',
    '--ts',
    '--readings-per-message',
    '--duration',
    '--count',
    '--password',
    '--prefix',
    '--mqtt',
    '--ca',
    '--insecure',
    '--events-rate',
    '--quiet',
    '--json',
    '--help',
  ]) {
    assert.ok(stdout.text().includes(flag), flag);
  }
});

test('a bad flag value stops with exit code 2 and a message naming the flag, the value and what is expected', async () => {
  const cases: [string[], string][] = [
    [['--qos', '3'], "--qos: expected 0, 1 or 2, got '3'"],
    [['--devices', 'ten'], "--devices: expected an integer from 1 to 1000000, got 'ten'"],
    [['--encoding', 'xml'], "--encoding: expected 'json' or 'cbor', got 'xml'"],
    [['--mqtt', '3'], "--mqtt: expected 4 or 5, got '3'"],
    [['--duration', 'soon'], "--duration: expected seconds or a duration like 30s or 2m, got 'soon'"],
    [['--url', 'http://x'], "--url: expected an mqtt://, mqtts://, ws:// or wss:// URL, got 'http://x'"],
    [['--ca', '/nonexistent/ca.pem'], "--ca: expected a readable PEM file, got '/nonexistent/ca.pem' (ENOENT)"],
    [['--bogus'], "Unknown option '--bogus'"],
  ];
  for (const [argv, message] of cases) {
    const stderr = capture();
    assert.equal(await runFleetCommand(argv, { stdout: capture(), stderr }), 2, argv.join(' '));
    assert.ok(stderr.text().includes(message), `${argv.join(' ')} → ${stderr.text()}`);
  }
  const stderr = capture();
  assert.equal(await runFleetCommand(['--qos', '9', '--shape', 'round'], { stdout: capture(), stderr }), 2);
  assert.equal(stderr.text().trim().split('\n').length, 2, 'every bad flag is reported at once');
});

test('otlp-edge-sim fleet runs to --count and prints the summary as JSON', async (t) => {
  const { url } = await rig(t);
  const stdout = capture();
  const stderr = capture();
  const code = await runFleetCommand(
    ['--url', url, '--devices', '3', '--rate', '300', '--count', '4', '--qos', '1', '--events-rate', '0', '--json'],
    { stdout, stderr },
  );
  assert.equal(code, 0, stderr.text());
  const summary = JSON.parse(stdout.text());
  assert.equal(summary.devices, 3);
  assert.equal(summary.sent, 12);
  assert.equal(summary.acked, 12);
  assert.equal(summary.errors, 0);
  assert.equal(typeof summary.ackLatencyMs.p99, 'number');
  assert.ok(stderr.text().includes('devices 3/3 connected'), 'the last status line'); // not a TTY: plain lines
});

test('interrupted (Ctrl-C), the command stops cleanly and prints what was sent and acknowledged', async (t) => {
  const { url } = await rig(t);
  const stdout = capture();
  const stderr = capture();
  const abort = new AbortController();
  const run = runFleetCommand(['--url', url, '--devices', '2', '--rate', '100', '--quiet'], {
    stdout,
    stderr,
    signal: abort.signal,
  });
  await new Promise((r) => setTimeout(r, 300));
  abort.abort();
  assert.equal(await run, 0, stderr.text());
  const table = stdout.text();
  assert.match(table, /^devices +2 \(2 connected when sending ended, 0 never connected, 0 reconnections\)$/m);
  assert.match(table, /^messages +sent (\d+), acked \1, unconfirmed 0$/m);
  assert.match(table, /^ack latency +p50 [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms$/m);
  assert.equal(stderr.text(), '', '--quiet: no status line');
});
