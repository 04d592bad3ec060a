import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server, type AddressInfo } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { DeviceAuthorizer, type DeviceAuthConfig } from '../../../../agent/receiver/auth.js';
import { CredentialStore, upsertCredential } from '../../../../agent/receiver/credentials.js';
import { createTestPki, type TestPki } from '../../../helpers/tls.js';
import { tempDir } from '../../../helpers/tmp.js';

type T = Parameters<typeof tempDir>[0];
const FAST = { N: 1024, r: 8, p: 1 };

let pki: TestPki;
before(async () => {
  pki = await createTestPki();
});
after(() => pki.cleanup());

interface Rig {
  auth: DeviceAuthorizer;
  port: number;
  tlsPort: number;
  /** topics the broker accepted from clients, in order */
  published: string[];
  /** client id → what the authorizer recorded for it, as seen by the broker */
  identities: Map<string, unknown>;
  connect(options: IClientOptions, tls?: boolean): Promise<MqttClient>;
}

/**
 * A real aedes broker with the authorizer's hooks on 127.0.0.1 (TCP and TLS, port 0). The TLS listener asks for a
 * client certificate but lets the handshake finish without one, so the refusal comes from the hook as a CONNACK.
 */
async function rig(t: T, config: Partial<DeviceAuthConfig>, devices: Record<string, string> = {}): Promise<Rig> {
  let credentials: CredentialStore | null = null;
  let credentialsFile = '';
  if (Object.keys(devices).length > 0) {
    credentialsFile = join(tempDir(t), 'devices.passwd');
    for (const [id, pw] of Object.entries(devices)) await upsertCredential(credentialsFile, id, pw, FAST);
    credentials = await CredentialStore.load(credentialsFile);
  }
  const auth = new DeviceAuthorizer(
    { allowAnonymous: false, requireClientCert: false, ...config, credentialsFile },
    { credentials },
  );
  const broker = await Aedes.createBroker({
    authenticate: auth.authenticate,
    authorizeSubscribe: auth.authorizeSubscribe,
    // What the agent's broker wiring does: the ACL decides, a refusal is an error (aedes then closes the connection).
    authorizePublish: (client, packet, done) =>
      done(auth.mayPublish(client, packet.topic) ? null : new Error('publish denied')),
  });
  const published: string[] = [];
  broker.on('publish', (packet, client) => {
    if (client) published.push(packet.topic);
  });
  const identities = new Map<string, unknown>();
  broker.on('clientReady', (client) => identities.set(client.id, auth.authenticationOf(client)));
  const tcp = createServer(broker.handle);
  const tls = createTlsServer(
    { key: pki.server.key, cert: pki.server.cert, ca: pki.ca, requestCert: true, rejectUnauthorized: false },
    broker.handle,
  );
  const clients: MqttClient[] = [];
  const listen = async (s: Server) => {
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    return (s.address() as AddressInfo).port;
  };
  const port = await listen(tcp);
  const tlsPort = await listen(tls);
  t.after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    tcp.close();
    tls.close();
  });
  return {
    auth,
    port,
    tlsPort,
    published,
    identities,
    async connect(options, useTls = false) {
      const url = useTls ? `mqtts://127.0.0.1:${tlsPort}` : `mqtt://127.0.0.1:${port}`;
      const c = await connectAsync(url, {
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: 5000,
        ca: pki.ca,
        ...options,
      });
      clients.push(c);
      return c;
    },
  };
}

async function refusedWith(p: Promise<MqttClient>): Promise<number> {
  try {
    const c = await p;
    await c.endAsync(true);
  } catch (err) {
    return (err as { code: number }).code;
  }
  assert.fail('the connection was accepted');
}

/** Publishes and reports whether the broker acknowledged it or closed the connection first. */
async function publishOutcome(c: MqttClient, topic: string): Promise<'acked' | 'closed'> {
  const closed = new Promise<'closed'>((resolve) => c.once('close', () => resolve('closed')));
  const acked = c.publishAsync(topic, '{"temperature":21.5}', { qos: 1 }).then(
    () => 'acked' as const,
    () => 'closed' as const,
  );
  return Promise.race([acked, closed]);
}

test('anonymous devices are refused by default with CONNACK 5', async (t) => {
  const r = await rig(t, {}, { 'dev-1': 'pw1' });
  assert.equal(await refusedWith(r.connect({ clientId: 'dev-1' })), 5);
  assert.equal(r.auth.counters.anonymous_refused, 1);
});

test('a wrong password gets CONNACK 4, the right one connects', async (t) => {
  const r = await rig(t, {}, { 'dev-1': 'pw1' });
  assert.equal(await refusedWith(r.connect({ clientId: 'dev-1', username: 'dev-1', password: 'nope' })), 4);
  assert.equal(
    await refusedWith(r.connect({ clientId: 'dev-2', username: 'dev-2', password: 'pw1' })),
    4,
    'unknown device',
  );
  const c = await r.connect({ clientId: 'dev-1', username: 'dev-1', password: 'pw1' });
  assert.equal(c.connected, true);
  assert.equal(
    await refusedWith(r.connect({ clientId: 'dev-2', username: 'dev-1', password: 'pw1' })),
    2,
    'a client id of another device',
  );
  assert.equal(c.connected, true, "and that attempt did not take over dev-1's session");
});

test("a device publishes to its own topics; publishing to another device's topic closes its connection", async (t) => {
  const r = await rig(t, {}, { 'dev-a': 'pw-a', 'dev-b': 'pw-b' });
  const a = await r.connect({ clientId: 'dev-a', username: 'dev-a', password: 'pw-a' });
  assert.equal(await publishOutcome(a, 'devices/dev-a/telemetry'), 'acked');
  assert.equal(await publishOutcome(a, 'devices/dev-a/events'), 'acked');
  // MQTT 3.1.1 has no negative PUBACK: aedes closes the connection on a failed authorizePublish [MQTT-3.3.5-2].
  assert.equal(await publishOutcome(a, 'devices/dev-b/telemetry'), 'closed');
  assert.deepEqual(r.published, ['devices/dev-a/telemetry', 'devices/dev-a/events'], "dev-b's topic got nothing");
  assert.equal(r.auth.counters.publish_denied, 1);

  const a2 = await r.connect({ clientId: 'dev-a', username: 'dev-a', password: 'pw-a' });
  assert.equal(await publishOutcome(a2, 'devices/dev-a/errors'), 'closed', 'a device cannot forge its own errors');
  assert.equal(r.published.length, 2);
});

test('a device may subscribe to its errors topic only (SUBACK 0x80 otherwise, connection stays)', async (t) => {
  const r = await rig(t, {}, { 'dev-a': 'pw-a' });
  const a = await r.connect({ clientId: 'dev-a', username: 'dev-a', password: 'pw-a' });
  // MQTT.js rejects a SUBACK holding a failure code; the codes are on the error's packet.
  const granted = await a.subscribeAsync(['devices/dev-a/errors', 'devices/dev-b/errors', '#']).then(
    (subs) => subs.map((s) => s.qos),
    (err: { packet?: { granted?: number[] } }) => err.packet?.granted,
  );
  assert.deepEqual(granted, [0, 128, 128]);
  assert.equal(a.connected, true);
});

test('allow_anonymous lets a device in without credentials', async (t) => {
  const r = await rig(t, { allowAnonymous: true });
  const c = await r.connect({ clientId: 'sim-1' });
  assert.equal(await publishOutcome(c, 'devices/sim-1/telemetry'), 'acked');
  assert.equal(await publishOutcome(c, 'devices/sim-2/telemetry'), 'acked', 'anonymous: any device, development only');
  assert.deepEqual(r.published, ['devices/sim-1/telemetry', 'devices/sim-2/telemetry']);
});

test('a client certificate with CN=dev-9 connects over mqtts without a password and publishes only as dev-9', async (t) => {
  const r = await rig(t, {});
  const cert = await pki.client('dev-9');
  const c = await r.connect({ clientId: 'dev-9', cert: cert.cert, key: cert.key }, true);
  assert.deepEqual(r.identities.get('dev-9'), { deviceId: 'dev-9', method: 'certificate' });
  assert.equal(await publishOutcome(c, 'devices/dev-9/telemetry'), 'acked');
  assert.equal(await publishOutcome(c, 'devices/dev-8/telemetry'), 'closed');
  assert.deepEqual(r.published, ['devices/dev-9/telemetry']);
});

test('require_client_cert refuses connections without a verified certificate with CONNACK 5', async (t) => {
  const r = await rig(t, { requireClientCert: true }, { 'dev-1': 'pw1' });
  assert.equal(
    await refusedWith(r.connect({ clientId: 'dev-1', username: 'dev-1', password: 'pw1' }, true)),
    5,
    'TLS without a certificate',
  );
  assert.equal(await refusedWith(r.connect({ clientId: 'dev-1', username: 'dev-1', password: 'pw1' })), 5, 'plain TCP');
  const rogue = await pki.client('dev-1', { untrusted: true });
  assert.equal(
    await refusedWith(r.connect({ clientId: 'dev-1', cert: rogue.cert, key: rogue.key }, true)),
    5,
    'a certificate from another CA',
  );
  const good = await pki.client('dev-1');
  const c = await r.connect({ clientId: 'dev-1', cert: good.cert, key: good.key }, true);
  assert.equal(c.connected, true);
  assert.equal(r.auth.counters.client_cert_required, 3);
});

const mosquittoPub = (() => {
  try {
    return execFileSync('which', ['mosquitto_pub'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
})();

function runMosquittoPub(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(mosquittoPub!, args, { timeout: 10_000 }, (err, _stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stderr });
    });
  });
}

test(
  'mosquitto_pub (a client this project did not write) authenticates with password and certificate',
  { skip: mosquittoPub === null && 'mosquitto_pub not installed' },
  async (t) => {
    const r = await rig(t, {}, { 'dev-1': 'pw1' });
    const base = ['-h', '127.0.0.1', '-V', 'mqttv311', '-q', '1', '-m', '{"temperature":20}'];
    const ok = await runMosquittoPub([
      ...base,
      '-p',
      String(r.port),
      '-i',
      'dev-1',
      '-u',
      'dev-1',
      '-P',
      'pw1',
      '-t',
      'devices/dev-1/telemetry',
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const bad = await runMosquittoPub([
      ...base,
      '-p',
      String(r.port),
      '-i',
      'dev-1',
      '-u',
      'dev-1',
      '-P',
      'nope',
      '-t',
      'devices/dev-1/telemetry',
    ]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /bad user name or password/i);

    const cert = await pki.client('dev-9');
    const tls = await runMosquittoPub([
      ...base,
      '-p',
      String(r.tlsPort),
      '-i',
      'dev-9',
      '--cafile',
      pki.caFile,
      '--cert',
      cert.certFile,
      '--key',
      cert.keyFile,
      '-t',
      'devices/dev-9/events',
    ]);
    assert.equal(tls.code, 0, tls.stderr);
    assert.deepEqual(r.published, ['devices/dev-1/telemetry', 'devices/dev-9/events']);
  },
);
