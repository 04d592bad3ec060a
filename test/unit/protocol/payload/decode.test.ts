import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from 'cbor-x';
import { decodeEvents, decodeTelemetry, detectEncoding } from '../../../../protocol/payload/decode.js';
import { parseRfc3339 } from '../../../../protocol/payload/timestamp.js';
import { PayloadError } from '../../../../protocol/errors.js';
import { DEFAULT_LIMITS } from '../../../../protocol/payload/types.js';

const ARRIVAL = 1732280000000;
const opts = { arrivalMs: ARRIVAL };
const json = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
const rejects = (fn: () => unknown, code: string, message?: RegExp) =>
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PayloadError, `expected a PayloadError, got ${String(e)}`);
    assert.equal(e.code, `OTLPEDGE_PAYLOAD_${code}`);
    if (message) assert.match(e.message, message);
    return true;
  });

test('flat readings: numbers and booleans are metrics, objects flatten with dots, strings are attributes, null is skipped', () => {
  for (const payload of [json({ ts: 1732280000123, seq: 42, temperature: 21.5, door_open: false, env: { hum: 40, unit: 'pct', probe: null }, fw: '1.4.2' })]) {
    for (const p of [payload, Buffer.from(encode(JSON.parse(payload.toString())))]) {
      assert.deepEqual(decodeTelemetry(p, opts), [{
        ts: 1732280000123, seq: 42, names: ['temperature', 'door_open', 'env.hum'], values: [21.5, 0, 40], attributes: ['env.unit', 'pct', 'fw', '1.4.2'],
      }]);
    }
  }
});

test('explicit readings: metrics and attributes as named, numbers in attributes kept as text', () => {
  const r = decodeTelemetry(json({ ts: '2026-11-22T12:00:00Z', seq: 1, metrics: { temperature: 21.5, env: { hum: 40 }, ok: true }, attributes: { fw: '1.4.2', rev: 3, beta: false } }), opts);
  assert.deepEqual(r, [{ ts: Date.UTC(2026, 10, 22, 12), seq: 1, names: ['temperature', 'env.hum', 'ok'], values: [21.5, 40, 1], attributes: ['fw', '1.4.2', 'rev', '3', 'beta', 'false'] }]);
  rejects(() => decodeTelemetry(json({ metrics: { t: 1 }, extra: 1 }), opts), 'BAD_SHAPE', /unexpected key 'extra'/);
  rejects(() => decodeTelemetry(json({ metrics: { t: 'hot' } }), opts), 'BAD_VALUE', /metric 't' is "hot"/);
  rejects(() => decodeTelemetry(json({ metrics: [1] }), opts), 'BAD_SHAPE', /'metrics' is a list/);
  rejects(() => decodeTelemetry(json({ metrics: { t: 1 }, attributes: { a: [1] } }), opts), 'BAD_ATTRIBUTE', /attribute 'a' is a list/);
});

test('an array carries several readings, counted from 0 in messages', () => {
  const r = decodeTelemetry(json([{ seq: 1, t: 1 }, { seq: 2, t: 2.5 }]), opts);
  assert.deepEqual(r.map((x) => [x.seq, x.values[0], x.ts]), [[1, 1, ARRIVAL], [2, 2.5, ARRIVAL]]);
  rejects(() => decodeTelemetry(Buffer.from(encode([{ t: 1 }, { t: 1 }, { t: 1 }, { temp: NaN }])), opts), 'BAD_VALUE', /^reading 3: metric 'temp' is NaN; expected a finite number$/);
  rejects(() => decodeTelemetry(json([{ t: 1 }, 5]), opts), 'BAD_SHAPE', /reading 1 is 5; expected an object/);
  rejects(() => decodeTelemetry(json([]), opts), 'BAD_SHAPE', /carries no readings/);
  rejects(() => decodeTelemetry(json('"hello"'), opts), 'BAD_CBOR'); // not { or [: read as CBOR
  rejects(() => decodeTelemetry(json({ list: [1, 2] }), opts), 'BAD_SHAPE', /'list' is a list/);
});

test('ts: epoch ms, RFC 3339 with offsets and fractions, CBOR dates, or arrival time', () => {
  const ts = (v: unknown) => decodeTelemetry(json({ ts: v, t: 1 }), opts)[0].ts;
  assert.equal(ts(1732280000123), 1732280000123);
  assert.equal(ts(1732280000123.5), 1732280000123.5);
  assert.equal(ts('2026-11-22T12:00:00.5+02:00'), Date.UTC(2026, 10, 22, 10, 0, 0, 500));
  assert.equal(ts('2026-11-22 12:00:00z'), Date.UTC(2026, 10, 22, 12));
  assert.equal(ts('2026-11-22t12:00:00.123456789-00:30'), Date.UTC(2026, 10, 22, 12, 30) + 123.456789);
  assert.equal(decodeTelemetry(json({ t: 1 }), opts)[0].ts, ARRIVAL);
  assert.equal(decodeTelemetry(Buffer.from(encode({ ts: new Date(1732280000999), t: 1 })), opts)[0].ts, 1732280000999);
  for (const bad of ['yesterday', '2026-13-01T00:00:00Z', '2026-02-30T00:00:00Z', '2026-11-22T24:00:00Z', '2026-11-22T12:00:00', '2026-11-22T12:00:00.1234567890Z', true, null, {}]) {
    rejects(() => decodeTelemetry(json({ ts: bad, t: 1 }), opts), 'BAD_TS', /reading 0: 'ts' is/);
  }
  rejects(() => ts(1732280000), 'BAD_TS', /sent in seconds/);
  rejects(() => ts(1e16), 'BAD_TS', /after 2262/);
  assert.equal(parseRfc3339('2024-02-29T00:00:00Z'), Date.UTC(2024, 1, 29));
  assert.equal(parseRfc3339('2023-02-29T00:00:00Z'), null);
});

test('seq: an unsigned integer below 2^53, or -1 when absent; a reading of only seq is a heartbeat', () => {
  assert.equal(decodeTelemetry(json({ seq: 0, t: 1 }), opts)[0].seq, 0);
  assert.equal(decodeTelemetry(json({ seq: 2 ** 53 - 1, t: 1 }), opts)[0].seq, 2 ** 53 - 1);
  assert.deepEqual(decodeTelemetry(json({ seq: 9 }), opts)[0].names, []);
  for (const bad of [-1, 1.5, '3', 2 ** 53, null]) rejects(() => decodeTelemetry(json({ seq: bad, t: 1 }), opts), 'BAD_SEQ', /'seq' is/);
  rejects(() => decodeTelemetry(json({ fw: 'x' }), opts), 'NO_METRICS', /carries no metric/);
});

test('names and attribute values are bounded and free of control characters', () => {
  rejects(() => decodeTelemetry(json({ ['x'.repeat(256)]: 1 }), opts), 'BAD_NAME');
  rejects(() => decodeTelemetry(json({ 'a\u0001': 1 }), opts), 'BAD_NAME');
  rejects(() => decodeTelemetry(json({ '': 1 }), opts), 'BAD_NAME');
  rejects(() => decodeTelemetry(json({ t: 1, note: 'n'.repeat(4097) }), opts), 'BAD_ATTRIBUTE', /4097 characters/);
  assert.equal(decodeTelemetry(json({ ['x'.repeat(255)]: 1 }), opts)[0].names[0].length, 255);
});

test('limits: exactly at each limit passes, one past is rejected with its code', () => {
  const metrics = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`m${i}`, i]));
  assert.equal(decodeTelemetry(json(metrics(1000)), opts)[0].names.length, 1000);
  rejects(() => decodeTelemetry(json(metrics(1001)), opts), 'TOO_MANY_METRICS', /more than 1000 metrics/);
  assert.equal(decodeTelemetry(json(Array.from({ length: 10_000 }, () => ({ t: 1 }))), opts).length, 10_000);
  rejects(() => decodeTelemetry(json(Array.from({ length: 10_001 }, () => ({ t: 1 }))), opts), 'TOO_MANY_READINGS', /10001 readings; the limit is 10000/);
  const pad = (n: number) => Buffer.concat([json({ t: 1 }), Buffer.alloc(n - json({ t: 1 }).length, 0x20)]);
  assert.equal(decodeTelemetry(pad(DEFAULT_LIMITS.maxBytes), opts).length, 1);
  rejects(() => decodeTelemetry(pad(DEFAULT_LIMITS.maxBytes + 1), opts), 'TOO_LARGE', /262145 bytes; the limit is 262144/);
  let deep: Record<string, unknown> = { v: 1 };
  for (let i = 0; i < 15; i++) deep = { n: deep };
  assert.equal(decodeTelemetry(json(deep), opts)[0].names[0].split('.').length, 16);
  rejects(() => decodeTelemetry(json({ n: deep }), opts), 'TOO_DEEP');
  rejects(() => decodeTelemetry(Buffer.alloc(0), opts), 'EMPTY');
});

test('encoding: content-type wins, otherwise JSON is sniffed and the rest is CBOR', () => {
  assert.equal(detectEncoding(json('  \n{"a":1}')), 'json');
  assert.equal(detectEncoding(json('[1]')), 'json');
  assert.equal(detectEncoding(Buffer.from(encode({ a: 1 }))), 'cbor');
  assert.equal(detectEncoding(Buffer.from(encode({ a: 1 })), 'application/json; charset=utf-8'), 'json');
  assert.equal(detectEncoding(json('{"a":1}'), 'Application/CBOR'), 'cbor');
  rejects(() => detectEncoding(json('{}'), 'text/plain'), 'BAD_CONTENT_TYPE', /application\/json or application\/cbor/);
  // A CBOR array whose first byte happens to be '[' (0x5b: a 27-byte byte string) is CBOR when the content-type says so.
  rejects(() => decodeTelemetry(json('{"t":1}'), { ...opts, contentType: 'application/cbor' }), 'BAD_CBOR');
  assert.equal(decodeTelemetry(Buffer.from(encode({ t: 2 })), { ...opts, contentType: 'application/cbor' })[0].values[0], 2);
});

test('CBOR: strict structure, UTF-8, keys, tags and simple values', () => {
  rejects(() => decodeTelemetry(Buffer.from([0xa1, 0x63, 0xff, 0xfe, 0x41, 0x01]), opts), 'BAD_UTF8');
  rejects(() => decodeTelemetry(Buffer.from([0xa1, 0x61, 0x74, 0x63, 0xc3, 0x28, 0x41]), opts), 'BAD_UTF8');
  rejects(() => decodeTelemetry(Buffer.from([0xa1, 0x01, 0x02]), opts), 'BAD_CBOR', /map keys must be text/);
  rejects(() => decodeTelemetry(Buffer.from([0xa1, 0x61, 0x74, 0xf7]), opts), 'BAD_CBOR', /undefined/);
  rejects(() => decodeTelemetry(Buffer.from([0xa1, 0x61, 0x74, 0xd8, 0x40, 0x41, 0x00]), opts), 'BAD_CBOR', /tag 64/);
  rejects(() => decodeTelemetry(Buffer.concat([Buffer.from(encode({ t: 1 })), Buffer.from([0x01])]), opts), 'BAD_CBOR', /follow the first item/);
  rejects(() => decodeTelemetry(Buffer.from(encode({ t: 1 })).subarray(0, 3), opts), 'BAD_CBOR', /truncated/);
  rejects(() => decodeTelemetry(Buffer.from([0x9a, 0xff, 0xff, 0xff, 0xff]), opts), 'BAD_CBOR', /claims 4294967295 entries but only 0 bytes remain/);
  for (const nan of [[0xf9, 0x7e, 0x00], [0xfa, 0x7f, 0xc0, 0, 0], [0xfb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0]]) {
    rejects(() => decodeTelemetry(Buffer.from([0xa1, 0x61, 0x74, ...nan]), opts), 'BAD_VALUE', /metric 't' is (NaN|Infinity)/);
  }
  const protoKey = Buffer.concat([Buffer.from([0xa1, 0x69]), Buffer.from('__proto__'), Buffer.from([0x01])]);
  rejects(() => decodeTelemetry(protoKey, opts), 'BAD_CBOR', /__proto__/);
  // indefinite-length maps are fine; chunked strings are refused clearly
  assert.deepEqual(decodeTelemetry(Buffer.from([0xbf, 0x61, 0x74, 0x05, 0xff]), opts)[0].values, [5]);
  rejects(() => decodeTelemetry(Buffer.from([0xbf, 0x7f, 0x61, 0x74, 0xff, 0x05, 0xff]), opts), 'BAD_CBOR', /indefinite-length strings/);
});

test('events: severity, structured body and attributes, with clear refusals', () => {
  const [e] = decodeEvents(json({ ts: 1732280000000, severity: 'Error', body: { code: 'E42', temps: [1, 2.5] }, attributes: { valve: 3, ok: false, site: 'x' } }), opts);
  assert.deepEqual(e, { ts: 1732280000000, severityNumber: 17, severityText: 'Error', body: { code: 'E42', temps: [1, 2.5] }, attributes: ['valve', 3, 'ok', false, 'site', 'x'] });
  assert.deepEqual(decodeEvents(json([{ body: 'door open' }]), opts)[0], { ts: ARRIVAL, severityNumber: 0, severityText: '', body: 'door open', attributes: null });
  for (const [sev, n] of [['trace', 1], ['debug', 5], ['info', 9], ['warn', 13], ['fatal', 21]] as const) assert.equal(decodeEvents(json({ severity: sev, body: 'x' }), opts)[0].severityNumber, n);
  rejects(() => decodeEvents(json({ severity: 'loud', body: 'x' }), opts), 'BAD_EVENT', /one of trace, debug, info, warn, error, fatal/);
  rejects(() => decodeEvents(json({ severity: 'info' }), opts), 'BAD_EVENT', /'body' is required/);
  rejects(() => decodeEvents(json({ body: 'x', colour: 'red' }), opts), 'BAD_EVENT', /unexpected key 'colour'/);
  rejects(() => decodeEvents(Buffer.from(encode({ body: { v: Infinity } })), opts), 'BAD_EVENT', /'body\.v' is Infinity/);
  rejects(() => decodeEvents(json({ body: 'x', attributes: { a: { b: 1 } } }), opts), 'BAD_EVENT', /attribute 'a' is an object/);
});
