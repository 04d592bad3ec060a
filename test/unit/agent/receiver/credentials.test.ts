import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import {
  CredentialStore,
  DEFAULT_SCRYPT_PARAMS,
  hashPassword,
  upsertCredential,
  verifyPassword,
} from '../../../../agent/receiver/credentials.js';
import { AuthErrorCodes } from '../../../../agent/receiver/auth-errors.js';
import { runPasswd } from '../../../../agent/cli/passwd.js';
import { tempDir } from '../../../helpers/tmp.js';

/** Cheap parameters for tests that exercise the file rather than the cost. */
const FAST = { N: 1024, r: 8, p: 1 };

test('a hashed password verifies, a wrong one does not', async () => {
  const encoded = await hashPassword('s3cret');
  assert.match(encoded, /^\$scrypt\$N=16384,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  assert.equal(await verifyPassword(encoded, 's3cret'), true);
  assert.equal(await verifyPassword(encoded, Buffer.from('s3cret')), true);
  assert.equal(await verifyPassword(encoded, 's3cret '), false);
  assert.notEqual(await hashPassword('s3cret'), encoded, 'every hash has its own salt');
});

test('hashPassword refuses parameters that would exhaust a gateway', async () => {
  await assert.rejects(hashPassword('x', { N: 1000, r: 8, p: 1 }), {
    code: AuthErrorCodes.BAD_HASH_PARAMS,
    message: /power of two/,
  });
  await assert.rejects(hashPassword('x', { N: 2 ** 20, r: 8, p: 1 }), {
    code: AuthErrorCodes.BAD_HASH_PARAMS,
    message: /64 MiB/,
  });
});

test('upsert writes a file that loads, keeps comments and other devices, and stays mode 0600', async (t) => {
  const file = join(tempDir(t), 'devices.passwd');
  await writeFile(file, '# fleet A\n\n# sensor on the roof\n', { mode: 0o644 });
  assert.equal(await upsertCredential(file, 'dev-1', 'one', FAST), 'added');
  assert.equal(await upsertCredential(file, 'dev:2', 'two', FAST), 'added');
  const before = await readFile(file, 'utf8');
  assert.equal(await upsertCredential(file, 'dev-1', 'uno', FAST), 'replaced');
  const after = await readFile(file, 'utf8');

  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const lines = after.split('\n');
  assert.deepEqual(lines.slice(0, 3), ['# fleet A', '', '# sensor on the roof']);
  assert.match(lines[3], /^dev-1:\$scrypt\$/, 'the replaced line stays where it was');
  assert.equal(lines[4], before.split('\n')[4], 'the other device is untouched');
  assert.equal(lines.length, 6, 'one line per device, trailing newline');

  const store = await CredentialStore.load(file);
  assert.equal(store.size, 2);
  assert.equal(await store.verify('dev-1', 'uno'), true);
  assert.equal(await store.verify('dev-1', 'one'), false);
  assert.equal(await store.verify('dev:2', Buffer.from('two')), true, 'a device id may contain ":"');
});

test('upsert creates a missing file with a header, mode 0600', async (t) => {
  const file = join(tempDir(t), 'new.passwd');
  await upsertCredential(file, 'dev-1', 'pw', FAST);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.match(await readFile(file, 'utf8'), /^# otlp-edge device credentials, format v1/);
  assert.equal(await (await CredentialStore.load(file)).verify('dev-1', 'pw'), true);
});

test('a malformed line stops loading with file:line and what is expected', async (t) => {
  const file = join(tempDir(t), 'bad.passwd');
  const good = `dev-1:${await hashPassword('x', FAST)}`;
  const cases: Array<[string, RegExp]> = [
    ['dev-2 secret', /no DEVICE_ID:\$… separator/],
    [
      'dev 2:$scrypt$N=1024,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      /device id "dev 2" is not 1–128 characters/,
    ],
    ['dev-2:$bcrypt$x$y$z', /unknown hash scheme "bcrypt"/],
    [
      'dev-2:$scrypt$N=1000,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      /N=1000 is not a power of two/,
    ],
    ['dev-2:$scrypt$N=1024,r=8,p=1$AAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', /the salt is 3 bytes/],
    [good, /device dev-1 is already defined on line 2/],
  ];
  for (const [line, problem] of cases) {
    await writeFile(file, `# header\n${good}\n${line}\n`);
    await assert.rejects(CredentialStore.load(file), (err: Error & { code?: string }) => {
      assert.equal(err.code, AuthErrorCodes.BAD_CREDENTIALS_FILE);
      assert.ok(err.message.startsWith(`${file}:3: `), err.message);
      assert.match(err.message, problem);
      assert.match(err.message, /expected DEVICE_ID:\$scrypt\$N=16384,r=8,p=1\$SALT\$HASH/);
      assert.doesNotMatch(err.message, /AAAAAAAAAAAA/, 'the message does not echo hashes');
      return true;
    });
  }
  await assert.rejects(CredentialStore.load(join(tempDir(t), 'missing')), {
    code: AuthErrorCodes.CREDENTIALS_UNREADABLE,
  });
  // CRLF files (edited on Windows) load.
  await writeFile(file, `# header\r\n${good}\r\n`);
  assert.equal((await CredentialStore.load(file)).has('dev-1'), true);
});

test('a second login of the same device is answered from the cache without scrypt', async (t) => {
  const file = join(tempDir(t), 'devices.passwd');
  await upsertCredential(file, 'dev-1', 'pw');
  const store = await CredentialStore.load(file);

  assert.equal(await store.verify('dev-1', 'pw'), true);
  assert.deepEqual(store.stats, { scrypt: 1, cacheHits: 0, cached: 1 });
  assert.equal(await store.verify('dev-1', Buffer.from('pw')), true);
  assert.deepEqual(store.stats, { scrypt: 1, cacheHits: 1, cached: 1 });

  assert.equal(await store.verify('dev-1', 'wrong'), false, 'a wrong password still pays scrypt and fails');
  assert.equal(store.stats.scrypt, 2);
  assert.equal(await store.verify('dev-1', 'pw'), true, 'a failed attempt does not evict the good entry');
  assert.equal(store.stats.scrypt, 2);
});

test('an unknown device is refused after a dummy scrypt (no enumeration by timing)', async (t) => {
  const file = join(tempDir(t), 'devices.passwd');
  await upsertCredential(file, 'dev-1', 'pw');
  const store = await CredentialStore.load(file);
  assert.equal(store.has('ghost'), false);
  assert.equal(await store.verify('ghost', 'pw'), false);
  assert.equal(await store.verify('ghost', undefined), false);
  assert.equal(store.stats.scrypt, 2, 'the unknown device cost as much as a known one');
  assert.equal(store.stats.cached, 0);
});

test('reload picks up a changed password and forgets cached logins; a broken file keeps the old ones', async (t) => {
  const file = join(tempDir(t), 'devices.passwd');
  await upsertCredential(file, 'dev-1', 'old', FAST);
  const store = await CredentialStore.load(file);
  assert.equal(await store.verify('dev-1', 'old'), true);
  assert.equal(store.stats.cached, 1);

  await upsertCredential(file, 'dev-1', 'new', FAST);
  assert.equal(await store.verify('dev-1', 'old'), true, 'until reload the loaded file is in force');
  await store.reload();
  assert.equal(store.stats.cached, 0);
  assert.equal(await store.verify('dev-1', 'old'), false);
  assert.equal(await store.verify('dev-1', 'new'), true);

  await writeFile(file, 'garbage\n');
  await assert.rejects(store.reload(), { code: AuthErrorCodes.BAD_CREDENTIALS_FILE });
  assert.equal(await store.verify('dev-1', 'new'), true);
});

test('scrypt runs at most maxConcurrentHashes at a time', async (t) => {
  const file = join(tempDir(t), 'devices.passwd');
  await upsertCredential(file, 'dev-1', 'pw', FAST);
  const store = await CredentialStore.load(file, { maxConcurrentHashes: 1 });
  const results = await Promise.all(Array.from({ length: 6 }, (_, i) => store.verify('dev-1', i % 2 ? 'pw' : 'no')));
  assert.deepEqual(results, [false, true, false, true, false, true]);
});

// ---- otlp-edge-agent passwd ----

function io(stdinText: string | null) {
  const out: string[] = [];
  const err: string[] = [];
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('data', (c) => out.push(String(c)));
  stderr.on('data', (c) => err.push(String(c)));
  const stdin = stdinText === null ? new PassThrough() : Readable.from([Buffer.from(stdinText)]);
  return { io: { stdin, stdout, stderr }, out: () => out.join(''), err: () => err.join('') };
}

test('passwd stores the first line of stdin as the device password', async (t) => {
  const file = join(tempDir(t), 'devices.passwd');
  const run = io('hunter2\nignored second line\n');
  assert.equal(await runPasswd(['--file', file, 'sensor-0042'], run.io), 0);
  assert.match(run.out(), /added device sensor-0042 in /);
  const store = await CredentialStore.load(file);
  assert.equal(await store.verify('sensor-0042', 'hunter2'), true);
  assert.equal((await stat(file)).mode & 0o777, 0o600);

  const again = io('hunter3\r\n');
  assert.equal(await runPasswd(['-f', file, 'sensor-0042'], again.io), 0);
  assert.match(again.out(), /replaced device sensor-0042/);
  await store.reload();
  assert.equal(await store.verify('sensor-0042', 'hunter3'), true, 'CRLF input does not end up in the password');
  assert.match(await readFile(file, 'utf8'), new RegExp(`^sensor-0042:\\$scrypt\\$N=${DEFAULT_SCRYPT_PARAMS.N},`, 'm'));
});

test('passwd refuses an empty password and a bad device id with exit 2, naming value and rule', async (t) => {
  const file = join(tempDir(t), 'devices.passwd');
  const empty = io('\n');
  assert.equal(await runPasswd(['--file', file, 'dev-1'], empty.io), 2);
  assert.match(empty.err(), /password for device "dev-1" is empty/);

  const noInput = io('');
  assert.equal(await runPasswd(['--file', file, 'dev-1'], noInput.io), 2);

  const bad = io('pw\n');
  assert.equal(await runPasswd(['--file', file, 'dev/1'], bad.io), 2);
  assert.match(bad.err(), /device id "dev\/1" is invalid; expected 1–128 characters of \[A-Za-z0-9._:-\]/);
  await assert.rejects(stat(file), { code: 'ENOENT' }, 'nothing was written');

  const long = io('pw\n');
  assert.equal(await runPasswd(['--file', file, 'x'.repeat(129)], long.io), 2);
});

test('passwd usage errors and --help', async (t) => {
  const help = io(null);
  assert.equal(await runPasswd(['--help'], help.io), 0);
  assert.match(help.out(), /Usage: otlp-edge-agent passwd --file FILE DEVICE_ID/);

  for (const argv of [[], ['dev-1'], ['--file', 'x'], ['--file', 'x', 'a', 'b'], ['--nope', '--file', 'x', 'a']]) {
    const run = io('pw\n');
    assert.equal(await runPasswd(argv, run.io), 2, argv.join(' '));
    assert.match(run.err(), /Usage:/);
  }

  const dir = tempDir(t);
  const file = join(dir, 'broken.passwd');
  await writeFile(file, 'not a credential\n');
  const broken = io('pw\n');
  assert.equal(await runPasswd(['--file', file, 'dev-1'], broken.io), 1, 'a malformed file is not overwritten');
  assert.match(broken.err(), /OTLPEDGE_AUTH_BAD_CREDENTIALS_FILE: .*broken\.passwd:1/);
  assert.equal(await readFile(file, 'utf8'), 'not a credential\n');
});

test('passwd on a terminal prompts without echo and asks twice', async (t) => {
  const file = join(tempDir(t), 'devices.passwd');
  const stdin = Object.assign(new PassThrough(), {
    isTTY: true,
    rawModes: [] as boolean[],
    setRawMode(m: boolean) {
      this.rawModes.push(m);
      return this;
    },
  });
  const run = io(null);
  const done = runPasswd(['--file', file, 'dev-7'], { ...run.io, stdin });
  await new Promise((r) => setImmediate(r));
  stdin.write('pa');
  stdin.write('sx\u007fs\r');
  await new Promise((r) => setImmediate(r));
  stdin.write('pass\r');
  assert.equal(await done, 0);
  assert.match(run.err(), /^Password for dev-7: \nRetype password: \n$/);
  assert.equal(run.out(), `added device dev-7 in ${file}\n`, 'the password is never echoed');
  assert.deepEqual(stdin.rawModes, [true, false, true, false]);
  assert.equal(await (await CredentialStore.load(file)).verify('dev-7', 'pass'), true);
});
