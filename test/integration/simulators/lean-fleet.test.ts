import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { Aedes } from 'aedes';
import { connectAsync } from 'mqtt';
import { Fleet, FleetOptionsError, type FleetOptions } from '../../../simulators/fleet/fleet.js';
import { runFleetCommand } from '../../../simulators/fleet/cli.js';
import { waitFor } from '../../helpers/ports.js';
import { startMosquitto } from '../../helpers/mosquitto.js';
import { tempDir } from '../../helpers/tmp.js';
import { Writable } from 'node:stream';

type T = Parameters<typeof tempDir>[0];

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

async function startFleet(t: T, options: FleetOptions): Promise<Fleet> {
  const fleet = new Fleet({ client: 'lean', eventRate: 0, reconnectPeriod: 100, drainTimeout: 3000, ...options });
  t.after(async () => {
    await fleet.stop();
  });
  await fleet.start();
  return fleet;
}

/** Readings' seqs per device as a broker or subscriber saw them. */
function collector() {
  const seen = new Map<string, Set<number>>();
  return {
    seen,
    add(deviceId: string, payload: Buffer) {
      const seqs = seen.get(deviceId) ?? new Set<number>();
      seqs.add((JSON.parse(String(payload)) as { seq: number }).seq);
      seen.set(deviceId, seqs);
    },
  };
}

test('lean clients: 300 devices publish QoS 1 through mosquitto and a subscriber gets every reading', async (t) => {
  const m = await startMosquitto(tempDir(t));
  t.after(() => m.stop());
  const url = `mqtt://127.0.0.1:${m.port}`;
  const sub = await connectAsync(url, { clientId: 'observer', reconnectPeriod: 0 });
  t.after(() => sub.endAsync(true));
  const got = collector();
  sub.on('message', (topic, payload) => got.add(topic.split('/')[1], payload));
  await sub.subscribeAsync('devices/+/telemetry', { qos: 1 });

  const fleet = await startFleet(t, { url, devices: 300, count: 10, rate: 3000, qos: 1 });
  await fleet.finished;
  const s = await fleet.stop();
  assert.equal(s.neverConnected, 0);
  assert.equal(s.acked, 3000, 'every message was acknowledged (PUBACK)');
  assert.equal(s.reconnects, 0);
  await waitFor('every reading at the subscriber', () => [...got.seen.values()].every((x) => x.size === 10), 5000);
  assert.equal(got.seen.size, 300);
  for (const [id, seqs] of got.seen)
    assert.deepEqual(
      [...seqs].sort((a, b) => a - b),
      range(10),
      id,
    );
});

test('a reconnect storm: every connection cut at once, the devices come back and resend what was unacknowledged', async (t) => {
  const broker = await Aedes.createBroker();
  const got = collector();
  let connects = 0;
  broker.on('client', () => connects++);
  broker.on(
    'publish',
    (packet, client) => client && packet.topic.endsWith('/telemetry') && got.add(client.id, packet.payload as Buffer),
  );
  const server = createServer(broker.handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(async () => {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    server.close();
  });
  const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const fleet = await startFleet(t, { url, devices: 50, count: 40, rate: 1000, qos: 1, watchErrors: true });
  await waitFor('some messages', () => fleet.totals().sent >= 300, 5000, 5);
  assert.equal(fleet.storm(1), 50, 'every connected device was cut');
  await fleet.finished;
  await waitFor('all reconnected', () => fleet.connected === 50, 5000);

  // The errors topic (subscribed once, QoS 1) still reaches a device after its reconnection.
  broker.publish(
    {
      cmd: 'publish',
      topic: 'devices/sim-07/errors',
      payload: Buffer.from('{"error":"bad"}'),
      qos: 1,
      retain: false,
      dup: false,
    },
    () => undefined,
  );
  await waitFor('the rejection arrived', () => fleet.totals().rejections === 1, 3000);

  const s = await fleet.stop();
  assert.equal(connects, 100, 'each device connected twice');
  assert.equal(s.reconnects, 50);
  assert.equal(s.readings.sent, 2000);
  assert.equal(s.acked, 2000, 'what the cut left unacknowledged was resent and acknowledged');
  for (const [id, seqs] of got.seen)
    assert.deepEqual(
      [...seqs].sort((a, b) => a - b),
      range(40),
      id,
    );
  assert.equal(got.seen.size, 50);
});

test('connectRate ramps the connections: the 40th of 40 at 100/s opens no sooner than 390 ms after the first', async (t) => {
  const broker = await Aedes.createBroker();
  const times: number[] = [];
  broker.on('client', () => times.push(performance.now()));
  const server = createServer(broker.handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(async () => {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    server.close();
  });
  const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const fleet = await startFleet(t, { url, devices: 40, rate: 40, qos: 1, connectRate: 100 });
  await waitFor('all connected', () => fleet.connected === 40, 5000);
  assert.equal(times.length, 40);
  assert.ok(times[39] - times[0] >= 380, `connections spread over ${Math.round(times[39] - times[0])} ms`);
});

test('what the lean client cannot do is refused, naming the option', async () => {
  assert.throws(
    () => new Fleet({ client: 'lean', url: 'ws://127.0.0.1:1/mqtt' }),
    (e: unknown) => e instanceof FleetOptionsError && /url: expected an mqtt:\/\/ URL with client lean/.test(e.message),
  );
  assert.throws(
    () => new Fleet({ client: 'lean', url: 'mqtt://127.0.0.1:1', qos: 2 }),
    (e: unknown) => e instanceof FleetOptionsError && /qos: expected 0 or 1 with client lean/.test(e.message),
  );
  let err = '';
  const stderr = new Writable({ write: (c, _e, cb) => ((err += String(c)), cb()) });
  const code = await runFleetCommand(['--client', 'fast', '--storm-every', 'soon'], { stderr });
  assert.equal(code, 2);
  assert.match(err, /--client: expected 'mqtt.js' or 'lean', got 'fast'/);
  assert.match(err, /--storm-every: expected a duration like 30s or 2m, got 'soon'/);
});
