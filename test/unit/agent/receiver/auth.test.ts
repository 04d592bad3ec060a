import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Client, Subscription } from 'aedes';
import { DeviceAuthorizer, type DeviceAuthConfig, type RefusalReason } from '../../../../agent/receiver/auth.js';
import { AuthErrorCodes } from '../../../../agent/receiver/auth-errors.js';
import { CredentialStore, upsertCredential } from '../../../../agent/receiver/credentials.js';
import { RateLimitedLog } from '../../../../runtime/log/rate-limited-log.js';
import { TopicMatcher } from '../../../../protocol/topics.js';
import { pino } from 'pino';
import { tempDir } from '../../../helpers/tmp.js';

const FAST = { N: 1024, r: 8, p: 1 };
const STRICT: DeviceAuthConfig = { allowAnonymous: false, credentialsFile: '', requireClientCert: false };

async function storeWith(t: Parameters<typeof tempDir>[0], devices: Record<string, string>) {
  const file = join(tempDir(t), 'devices.passwd');
  for (const [id, pw] of Object.entries(devices)) await upsertCredential(file, id, pw, FAST);
  return { file, store: await CredentialStore.load(file) };
}

/** A stand-in for an aedes client: an id and a connection, optionally a TLS socket with a peer certificate. */
function fakeClient(id: string, tls?: { cn?: unknown; authorized: boolean }): Client {
  const conn =
    tls === undefined
      ? { remoteAddress: '127.0.0.1' }
      : {
          remoteAddress: '127.0.0.1',
          authorized: tls.authorized,
          authorizationError: tls.authorized ? null : 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
          getPeerCertificate: () => ({ subject: { CN: tls.cn } }),
        };
  return { id, conn } as unknown as Client;
}

function connect(auth: DeviceAuthorizer, client: Client, username?: unknown, password?: unknown) {
  return new Promise<{ ok: boolean; code?: string; returnCode?: number; message?: string }>((resolve) => {
    auth.authenticate(client, username as string | undefined, password as Buffer | undefined, (err, ok) => {
      const e = err as (Error & { code?: string; returnCode?: number }) | null;
      resolve({ ok: ok === true && e === null, code: e?.code, returnCode: e?.returnCode, message: e?.message });
    });
  });
}

function subscribe(auth: DeviceAuthorizer, client: Client, topic: string) {
  return new Promise<boolean>((resolve) =>
    auth.authorizeSubscribe(client, { topic, qos: 0 } as Subscription, (err, sub) =>
      resolve(err === null && sub != null),
    ),
  );
}

test('password login: identity is the username, the password is checked, refusals carry CONNACK 4', async (t) => {
  const { file, store } = await storeWith(t, { 'dev-1': 'pw1' });
  const auth = new DeviceAuthorizer({ ...STRICT, credentialsFile: file }, { credentials: store });

  const good = fakeClient('dev-1');
  assert.deepEqual(await connect(auth, good, 'dev-1', Buffer.from('pw1')), {
    ok: true,
    code: undefined,
    returnCode: undefined,
    message: undefined,
  });
  assert.equal(auth.identityOf(good), 'dev-1');
  assert.deepEqual(auth.authenticationOf(good), { deviceId: 'dev-1', method: 'password' });

  const wrong = await connect(auth, fakeClient('dev-1'), 'dev-1', Buffer.from('nope'));
  assert.deepEqual([wrong.ok, wrong.code, wrong.returnCode], [false, AuthErrorCodes.BAD_CREDENTIALS, 4]);
  assert.match(wrong.message!, /wrong password/);
  const unknown = await connect(auth, fakeClient('ghost'), 'ghost', Buffer.from('pw1'));
  assert.deepEqual([unknown.returnCode, unknown.code], [4, AuthErrorCodes.BAD_CREDENTIALS]);
  assert.equal((await connect(auth, fakeClient('dev-1'), 'dev-1', undefined)).returnCode, 4, 'no password');
  assert.equal((await connect(auth, fakeClient('x'), 'not a device', Buffer.from('pw1'))).returnCode, 4);
  assert.equal((await connect(auth, fakeClient('x'), '', Buffer.from('pw1'))).returnCode, 4);
  assert.equal(auth.counters.bad_credentials, 5);
});

test("the client id must be the device id or empty, so no device can take over another one's session", async (t) => {
  const { file, store } = await storeWith(t, { 'dev-1': 'pw1' });
  const auth = new DeviceAuthorizer({ ...STRICT, credentialsFile: file }, { credentials: store });
  const other = await connect(auth, fakeClient('dev-2'), 'dev-1', Buffer.from('pw1'));
  assert.deepEqual([other.code, other.returnCode], [AuthErrorCodes.IDENTITY_MISMATCH, 2]);
  assert.match(other.message!, /client id "dev-2" differs from device id "dev-1"/);
  assert.equal(store.stats.scrypt, 0, 'refused before any scrypt');

  const generated = fakeClient('aedes_0b7e3a52-1c4f-4f7e-9a51-1d2b3c4d5e6f');
  auth.preConnect(generated, { clientId: '' }, () => undefined); // CONNECT with an empty id: aedes made this one
  assert.equal(
    (await connect(auth, generated, 'dev-1', Buffer.from('pw1'))).ok,
    true,
    'an empty client id (aedes generated one) is fine',
  );
  assert.equal(auth.identityOf(generated), 'dev-1');

  // The same pattern sent by the device itself is not empty: it could take the session of a client aedes named.
  const lookAlike = fakeClient('aedes_0b7e3a52-1c4f-4f7e-9a51-1d2b3c4d5e6f');
  auth.preConnect(lookAlike, { clientId: 'aedes_0b7e3a52-1c4f-4f7e-9a51-1d2b3c4d5e6f' }, () => undefined);
  const r = await connect(auth, lookAlike, 'dev-1', Buffer.from('pw1'));
  assert.deepEqual([r.code, r.returnCode], [AuthErrorCodes.IDENTITY_MISMATCH, 2]);
});

test('a flood of bad logins from one address is throttled without scrypt; a known password still logs in', async (t) => {
  const { file, store } = await storeWith(t, { 'dev-1': 'pw1' });
  const auth = new DeviceAuthorizer({ ...STRICT, credentialsFile: file }, { credentials: store });
  assert.equal((await connect(auth, fakeClient('dev-1'), 'dev-1', Buffer.from('pw1'))).ok, true);
  for (let i = 0; i < 20; i++)
    assert.equal(
      (await connect(auth, fakeClient('dev-1'), 'dev-1', Buffer.from(`bad-${i}`))).code,
      AuthErrorCodes.BAD_CREDENTIALS,
    );
  const scrypts = store.stats.scrypt;
  const throttled = await connect(auth, fakeClient('dev-1'), 'dev-1', Buffer.from('bad-again'));
  assert.deepEqual([throttled.code, throttled.returnCode], [AuthErrorCodes.THROTTLED, 4]);
  assert.match(throttled.message!, /failed 20 logins within 10 s/);
  assert.equal(store.stats.scrypt, scrypts, 'refused without a password check');
  assert.equal(
    (await connect(auth, fakeClient('dev-1'), 'dev-1', Buffer.from('pw1'))).ok,
    true,
    'a password accepted before still logs in',
  );
  assert.equal(auth.counters.throttled, 1);
});

test('password checks beyond the waiting room are refused at once (BUSY), known devices go first', async (t) => {
  const { file } = await storeWith(t, { 'dev-1': 'pw1' });
  const { CredentialStore } = await import('../../../../agent/receiver/credentials.js');
  const store = await CredentialStore.load(file, { maxConcurrentHashes: 1, maxWaitingHashes: 4 });
  const results = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      store.verify(`ghost-${i}`, 'x').then(
        () => 'checked',
        (e: { code?: string }) => e.code,
      ),
    ),
  );
  assert.equal(results.filter((r) => r === 'checked').length, 5, '1 running + 4 waiting');
  assert.equal(results.filter((r) => r === AuthErrorCodes.BUSY).length, 5);
  // A real device queued behind unknown ids is checked before them.
  const order: string[] = [];
  const ghosts = Array.from({ length: 3 }, (_, i) => store.verify(`ghost-b${i}`, 'x').then(() => order.push('ghost')));
  const real = store.verify('dev-1', 'pw1').then((ok) => order.push(ok ? 'real' : 'real-failed'));
  await Promise.all([...ghosts, real]);
  assert.equal(order.indexOf('real'), 1, `order ${order.join(',')}`);
});

test('anonymous clients are refused with CONNACK 5 unless allowAnonymous, then the client id is the identity', async (t) => {
  const strict = new DeviceAuthorizer(STRICT);
  const refused = await connect(strict, fakeClient('dev-1'));
  assert.deepEqual([refused.code, refused.returnCode], [AuthErrorCodes.ANONYMOUS_REFUSED, 5]);
  const noFile = await connect(strict, fakeClient('dev-1'), 'dev-1', Buffer.from('x'));
  assert.deepEqual([noFile.returnCode, noFile.message], [4, 'device dev-1: no credentials file is configured']);

  const dev = new DeviceAuthorizer({ ...STRICT, allowAnonymous: true });
  const anon = fakeClient('sim-3');
  assert.equal((await connect(dev, anon)).ok, true);
  assert.deepEqual(dev.authenticationOf(anon), { deviceId: 'sim-3', method: 'anonymous' });
  const named = fakeClient('mosq-123');
  assert.equal(
    (await connect(dev, named, 'dev-4', Buffer.from('whatever'))).ok,
    true,
    'without a credentials file a username is taken unverified',
  );
  assert.deepEqual(dev.authenticationOf(named), { deviceId: 'dev-4', method: 'anonymous' });

  const { file, store } = await storeWith(t, { 'dev-1': 'pw1' });
  const mixed = new DeviceAuthorizer(
    { allowAnonymous: true, credentialsFile: file, requireClientCert: false },
    { credentials: store },
  );
  assert.equal(
    (await connect(mixed, fakeClient('dev-1'), 'dev-1', Buffer.from('bad'))).returnCode,
    4,
    'a wrong password is not downgraded to anonymous',
  );
  assert.equal((await connect(mixed, fakeClient('x1'))).ok, true);
});

test('a verified client certificate is the identity; unverified ones count for nothing', async () => {
  const auth = new DeviceAuthorizer(STRICT);
  const c = fakeClient('dev-9', { cn: 'dev-9', authorized: true });
  assert.equal((await connect(auth, c)).ok, true);
  assert.deepEqual(auth.authenticationOf(c), { deviceId: 'dev-9', method: 'certificate' });
  assert.equal(
    (await connect(auth, fakeClient('', { cn: 'dev-9', authorized: true }))).returnCode,
    2,
    'a client id that is not the CN',
  );
  assert.equal(
    (await connect(auth, fakeClient('dev-9', { cn: 'dev-9', authorized: true }), 'dev-8', Buffer.from('x'))).returnCode,
    5,
  );
  assert.equal((await connect(auth, fakeClient('dev-9', { cn: 'dev-9', authorized: true }), 'dev-9')).ok, true);
  assert.equal(
    (await connect(auth, fakeClient('dev-9', { cn: ['dev-9', 'dev-8'], authorized: true }))).code,
    AuthErrorCodes.BAD_CERT_IDENTITY,
  );
  assert.equal((await connect(auth, fakeClient('x', { cn: 'has space', authorized: true }))).returnCode, 5);
  assert.equal(
    (await connect(auth, fakeClient('dev-9', { cn: 'dev-9', authorized: false }))).code,
    AuthErrorCodes.ANONYMOUS_REFUSED,
  );

  const required = new DeviceAuthorizer({ ...STRICT, allowAnonymous: true, requireClientCert: true });
  const noCert = await connect(required, fakeClient('dev-9'));
  assert.deepEqual([noCert.code, noCert.returnCode], [AuthErrorCodes.CLIENT_CERT_REQUIRED, 5]);
  const unverified = await connect(required, fakeClient('dev-9', { cn: 'dev-9', authorized: false }));
  assert.match(unverified.message!, /not verified: UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  assert.equal((await connect(required, fakeClient('dev-9', { cn: 'dev-9', authorized: true }))).ok, true);
});

test('a device publishes only to its own telemetry and events topics and subscribes only to its errors topic', async () => {
  const auth = new DeviceAuthorizer(STRICT);
  const c = fakeClient('dev-9', { cn: 'dev-9', authorized: true });
  await connect(auth, c);
  assert.equal(auth.mayPublish(c, 'devices/dev-9/telemetry'), true);
  assert.equal(auth.mayPublish(c, 'devices/dev-9/events'), true);
  for (const topic of [
    'devices/dev-9/errors',
    'devices/dev-8/telemetry',
    'devices/dev-9/telemetry/x',
    '$SYS/x',
    'devices/+/telemetry',
    '',
  ]) {
    assert.equal(auth.mayPublish(c, topic), false, topic);
  }
  assert.equal(await subscribe(auth, c, 'devices/dev-9/errors'), true);
  for (const topic of ['devices/dev-8/errors', 'devices/dev-9/+', 'devices/+/errors', '#'])
    assert.equal(await subscribe(auth, c, topic), false, topic);
  assert.equal(auth.counters.publish_denied, 6);
  assert.equal(auth.counters.subscribe_denied, 4);
});

test('custom topic templates drive the ACL', async () => {
  const topics = new TopicMatcher({
    telemetry: 'site/{deviceId}/t',
    events: 'site/{deviceId}/e',
    errors: 'site/{deviceId}/err',
  });
  const auth = new DeviceAuthorizer(STRICT, { topics });
  const c = fakeClient('dev-1', { cn: 'dev-1', authorized: true });
  await connect(auth, c);
  assert.equal(auth.mayPublish(c, 'site/dev-1/t'), true);
  assert.equal(auth.mayPublish(c, 'devices/dev-1/telemetry'), false);
  assert.equal(await subscribe(auth, c, 'site/dev-1/err'), true);
});

test('anonymous (development) clients may publish for any device and subscribe to anything', async () => {
  const auth = new DeviceAuthorizer({ ...STRICT, allowAnonymous: true });
  const c = fakeClient('simulator');
  await connect(auth, c);
  assert.equal(auth.mayPublish(c, 'devices/dev-1/telemetry'), true);
  assert.equal(auth.mayPublish(c, 'devices/dev-2/events'), true);
  assert.equal(auth.mayPublish(c, 'devices/dev-2/errors'), false, "errors topics are the agent's voice");
  assert.equal(auth.mayPublish(c, 'devices/bad id/telemetry'), false);
  assert.equal(auth.mayPublish(c, 'other/topic'), false);
  assert.equal(await subscribe(auth, c, '#'), true);
});

test('weird input never throws: no client, no socket, odd types', async () => {
  const refusals: Array<[RefusalReason, string]> = [];
  const auth = new DeviceAuthorizer(STRICT, { onRefusal: (reason, clientId) => refusals.push([reason, clientId]) });
  assert.equal(auth.mayPublish(null, 'devices/dev-1/telemetry'), false);
  assert.equal(auth.mayPublish({}, 'devices/dev-1/telemetry'), false, 'a client that never authenticated');
  assert.equal(auth.mayPublish(undefined, undefined as unknown as string), false);
  assert.equal(auth.identityOf(null), undefined);
  assert.equal(await subscribe(auth, {} as Client, 'devices/dev-1/errors'), false);
  assert.equal((await connect(auth, {} as Client, 'dev-1', 'str-password')).returnCode, 4);
  assert.equal((await connect(auth, { id: 42 } as unknown as Client, 123, { not: 'a buffer' })).returnCode, 4);
  assert.equal((await connect(auth, null as unknown as Client)).returnCode, 3);
  assert.equal(
    (await connect(new DeviceAuthorizer({ ...STRICT, allowAnonymous: true }), null as unknown as Client)).returnCode,
    3,
  );
  const throwing = new DeviceAuthorizer(STRICT, {
    onRefusal: () => {
      throw new Error('metrics broke');
    },
  });
  assert.equal(throwing.mayPublish(null, 'x'), false);
  assert.equal(refusals.length, 7);
  assert.deepEqual(refusals[0], ['publish_denied', '']);
});

test('a scrypt failure refuses with CONNACK 3 (server unavailable) instead of crashing', async (t) => {
  const { file, store } = await storeWith(t, { 'dev-1': 'pw1' });
  store.verify = async () => {
    throw new Error('out of memory');
  };
  const auth = new DeviceAuthorizer({ ...STRICT, credentialsFile: file }, { credentials: store });
  const r = await connect(auth, fakeClient('dev-1'), 'dev-1', Buffer.from('pw1'));
  assert.deepEqual([r.code, r.returnCode], [AuthErrorCodes.INTERNAL, 3]);
  assert.equal(auth.counters.internal, 1);
});

test('a credentials file without a store is a wiring error, reported at once', () => {
  assert.throws(
    () => new DeviceAuthorizer({ ...STRICT, credentialsFile: '/etc/x' }),
    /credentialsFile is "\/etc\/x" but no CredentialStore was given/,
  );
});

test('refusals are logged at most N times per interval, then summarized', () => {
  const lines: Array<{ obj: Record<string, unknown>; msg: string }> = [];
  let now = 1000;
  const log = new RateLimitedLog(
    { warn: (obj, msg) => lines.push({ obj: obj as Record<string, unknown>, msg }) },
    { maxPerInterval: 3, intervalMs: 1000, now: () => now },
  );
  for (let i = 0; i < 10; i++) log.warn('bad_credentials', { i }, `refused ${i}`);
  log.warn('publish_denied', {}, 'other key');
  assert.deepEqual(
    lines.map((l) => l.msg),
    ['refused 0', 'refused 1', 'refused 2', 'other key'],
  );
  now += 1000;
  log.warn('bad_credentials', {}, 'next window');
  assert.deepEqual(
    lines.slice(4).map((l) => l.msg),
    ['suppressed 7 similar messages', 'next window'],
  );
  assert.deepEqual(lines[4].obj, { key: 'bad_credentials', suppressed: 7 });
  for (let i = 0; i < 5; i++) log.warn('bad_credentials', {}, 'again');
  log.flush();
  assert.equal(lines.at(-1)!.msg, 'suppressed 3 similar messages');
});

test('the authorizer logs refusals through the rate limiter', async () => {
  const lines: string[] = [];
  const auth = new DeviceAuthorizer(STRICT, {
    logger: { warn: (_o, msg) => lines.push(msg) },
    logRate: { maxPerInterval: 2 },
  });
  for (let i = 0; i < 5; i++) await connect(auth, fakeClient(`d${i}`));
  assert.deepEqual(
    lines,
    Array(2).fill('device refused: no username and no client certificate, and allow_anonymous is off'),
  );
  assert.equal(auth.counters.anonymous_refused, 5);
});

test('refusal logs are pino JSON with code, reason and client id', async () => {
  const out: string[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void out.push(s) });
  const auth = new DeviceAuthorizer(STRICT, { logger });
  await connect(auth, fakeClient('dev-1'));
  const line = JSON.parse(out[0]);
  assert.equal(line.code, AuthErrorCodes.ANONYMOUS_REFUSED);
  assert.equal(line.reason, 'anonymous_refused');
  assert.equal(line.clientId, 'dev-1');
  assert.equal(line.remote, '127.0.0.1');
  assert.match(line.msg, /^device refused: /);
});
