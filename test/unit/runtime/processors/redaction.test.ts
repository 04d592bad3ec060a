import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv, createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateConfig } from '../../../../protocol/config/schema.js';
import { checkRedaction, Redactor } from '../../../../runtime/processors/redaction.js';
import { redactionSpec, type RedactionConfig } from '../../../../runtime/processors/spec.js';
import { tempDir } from '../../../helpers/tmp.js';

function config(input: unknown): RedactionConfig {
  const { config, problems } = validateConfig(redactionSpec, input, { env: {} });
  assert.deepEqual(problems, []);
  return config;
}

function redactor(input: unknown = {}): { r: Redactor; found: string[] } {
  const c = config(input);
  assert.deepEqual(checkRedaction(c, 'p'), []);
  const found: string[] = [];
  return { r: new Redactor(c, (d) => found.push(d)), found };
}

test('built-in detectors find emails, phones, Luhn-valid cards and IP addresses', () => {
  const { r, found } = redactor();
  assert.equal(r.text('contact ops@example.com now'), 'contact **** now');
  assert.equal(r.text('call +49 151 2345 6789 or (030) 1234 5678'), 'call **** or ****');
  assert.equal(r.text('call +4915123456789'), 'call ****');
  assert.equal(r.text('card 4111 1111 1111 1111 ok'), 'card **** ok');
  assert.equal(r.text('from 192.168.10.7 and fe80::1ff:fe23:4567:890a'), 'from **** and ****');
  assert.deepEqual(found, ['email', 'phone', 'phone', 'phone', 'card', 'ip', 'ip']);
});

test('what is not PII is left alone: dates, times, versions, serials, non-Luhn digit runs, MAC addresses', () => {
  const { r, found } = redactor();
  for (const s of [
    '2026-12-03T10:22:33Z',
    'at 2026-12-03 10:22',
    'firmware 4.17.2',
    'serial 1732280000000',
    'card 4111 1111 1111 1112',
    'mac aa:bb:cc:dd:ee:ff',
    'temperature 21.5 C',
    'ip 999.1.1.1',
  ])
    assert.equal(r.text(s), s, s);
  assert.deepEqual(found, []);
});

test('strategies: partial keeps the end, truncate the start, hash is a keyed HMAC, drop removes', (t) => {
  assert.equal(redactor({ strategy: 'partial' }).r.text('4111-1111-1111-1111'), '***************1111');
  assert.equal(redactor({ strategy: 'truncate', keep: 3 }).r.text('mail ops@example.com'), 'mail ops…');
  const keyFile = join(tempDir(t), 'hmac.key');
  writeFileSync(keyFile, 'a-secret-of-sixteen-bytes-or-more');
  const h = redactor({ strategy: 'hash', key_file: keyFile }).r;
  const mac = createHmac('sha256', 'a-secret-of-sixteen-bytes-or-more').update('ops@example.com').digest('hex');
  assert.equal(h.text('to ops@example.com'), `to hmac:${mac.slice(0, 32)}`);
  assert.equal(h.text('to ops@example.com'), h.text('to ops@example.com'), 'the same input, the same pseudonym');
  const d = redactor({ strategy: 'drop' }).r;
  assert.deepEqual(d.attributes(['a', 'ops@example.com', 'b', 'fine']), ['b', 'fine']);
});

test('encrypt: AES-256-GCM that the key holder can reverse', (t) => {
  const key = Buffer.alloc(32, 7);
  const keyFile = join(tempDir(t), 'aes.key');
  writeFileSync(keyFile, key.toString('hex'));
  const out = redactor({ strategy: 'encrypt', key_file: keyFile }).r.text('from ops@example.com')!;
  const m = /^from enc:(.+)$/.exec(out);
  assert.ok(m, out);
  const raw = Buffer.from(m[1], 'base64');
  const dec = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  dec.setAuthTag(raw.subarray(raw.length - 16));
  assert.equal(
    Buffer.concat([dec.update(raw.subarray(12, raw.length - 16)), dec.final()]).toString(),
    'ops@example.com',
  );
});

test('keys: allowed keys are never redacted, blocked keys always are; structured values are walked', () => {
  const { r, found } = redactor({ keys_allowed: ['gw_ip'], keys_blocked: ['owner'] });
  assert.deepEqual(r.attributes(['gw_ip', '10.0.0.1', 'owner', 'Ada', 'peer', '10.0.0.2']), [
    'gw_ip',
    '10.0.0.1',
    'owner',
    '****',
    'peer',
    '****',
  ]);
  assert.deepEqual(r.value({ user: { owner: 'Ada', mail: 'a@b.example.org' }, list: ['1.2.3.4', 5] }), {
    user: { owner: '****', mail: '****' },
    list: ['****', 5],
  });
  assert.deepEqual(found, ['key', 'ip', 'key', 'email', 'ip']);
  const clean = { a: 'nothing here', b: [1, 2] };
  assert.equal(r.value(clean), clean, 'a clean structure is returned as is');
});

test('configured patterns (e.g. a national id) are detectors like the built-in ones', () => {
  const { r, found } = redactor({ detectors: [], patterns: [{ name: 'ssn', regex: '\\b\\d{3}-\\d{2}-\\d{4}\\b' }] });
  assert.equal(r.text('id 123-45-6789 and ops@example.com'), 'id **** and ops@example.com');
  assert.deepEqual(found, ['ssn']);
});

test('bad redaction configs are refused with the key path', (t) => {
  const problems = (input: unknown) => checkRedaction(config(input), 'processors[1].redaction');
  assert.deepEqual(problems({ strategy: 'hash' }), [
    { path: 'processors[1].redaction.key_file', message: 'required for strategy hash (a file holding the key)' },
  ]);
  const short = join(tempDir(t), 'short.key');
  writeFileSync(short, 'abc');
  assert.match(problems({ strategy: 'encrypt', key_file: short })[0].message, /not an AES-256 key/);
  assert.match(problems({ strategy: 'hash', key_file: '/nonexistent/key' })[0].message, /cannot read/);
  assert.match(problems({ key_file: short })[0].message, /uses no key/);
  assert.match(problems({ patterns: [{ name: 'x', regex: '[' }] })[0].message, /not a valid regular/);
  assert.match(problems({ patterns: [{ name: 'x', regex: 'a*' }] })[0].message, /matches empty text/);
  assert.match(problems({ detectors: [] })[0].message, /nothing to redact/);
  const { problems: schema } = validateConfig(redactionSpec, { detectors: ['ssn'] }, { env: {} });
  assert.match(schema[0].message, /email \| phone \| card \| ip/);
});
