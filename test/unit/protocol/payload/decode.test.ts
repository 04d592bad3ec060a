import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from 'cbor-x';
import { decodeEvents, decodeTelemetry, detectEncoding } from '../../../../protocol/payload/decode.js';
import { parseRfc3339 } from '../../../../protocol/payload/timestamp.js';
import { PayloadError } from '../../../../protocol/errors.js';
import { DEFAULT_LIMITS, type DecodeOptions } from '../../../../protocol/payload/types.js';

const ARRIVAL = 1732280000000;
const opts: DecodeOptions = { arrivalMs: ARRIVAL };
const json = (v: unknown): Buffer => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
const cbor = (v: unknown): Buffer => Buffer.from(encode(v));
const bytes = (...parts: (number | number[] | string | Uint8Array)[]): Buffer =>
  Buffer.concat(
    parts.map((p) =>
      typeof p === 'number' ? Buffer.from([p]) : typeof p === 'string' ? Buffer.from(p) : Buffer.from(p as number[]),
    ),
  );
/** A CBOR text string header + bytes (lengths below 256). */
const ctext = (s: string | number[]): Buffer => {
  const b = typeof s === 'string' ? Buffer.from(s) : Buffer.from(s);
  return bytes(b.length < 24 ? 0x60 | b.length : [0x78, b.length], b);
};
/** A CBOR map of the given key/value byte pairs (fewer than 24 entries). */
const cmap = (...entries: [string, Uint8Array][]): Buffer =>
  bytes(0xa0 | entries.length, ...entries.flatMap(([k, v]) => [ctext(k), v]));

const rejects = (fn: () => unknown, code: string, message?: RegExp): void => {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PayloadError, `expected a PayloadError, got ${String(e)}`);
    assert.equal(e.code, `OTLPEDGE_PAYLOAD_${code}`, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
};
/** The same value as JSON and as CBOR. */
const both = (v: unknown): Buffer[] => [json(v), cbor(v)];

test('flat readings: numbers and booleans are metrics, objects flatten with dots, strings are attributes, null is skipped', () => {
  const v = {
    ts: 1732280000123,
    seq: 42,
    temperature: 21.5,
    door_open: false,
    ok: true,
    env: { hum: 40, unit: 'pct', probe: null },
    fw: '1.4.2',
  };
  for (const p of both(v)) {
    assert.deepEqual(decodeTelemetry(p, opts), [
      {
        ts: 1732280000123,
        seq: 42,
        names: ['temperature', 'door_open', 'ok', 'env.hum'],
        values: [21.5, 0, 1, 40],
        attributes: ['env.unit', 'pct', 'fw', '1.4.2'],
      },
    ]);
  }
  assert.equal(decodeTelemetry(json({ t: 1 }), opts)[0].attributes, null);
  assert.deepEqual(decodeTelemetry(json({ a: { b: { c: -2.5e-3 } } }), opts)[0].names, ['a.b.c']);
  // an `attributes` object in the flat form holds attributes, as in the explicit form
  assert.deepEqual(decodeTelemetry(json({ t: 1, attributes: { fw: '1.4.2', rev: 3 } }), opts)[0].attributes, [
    'fw',
    '1.4.2',
    'rev',
    '3',
  ]);
  rejects(
    () => decodeTelemetry(json({ t: 1, attributes: 'x' }), opts),
    'BAD_ATTRIBUTE',
    /^reading 0: 'attributes' is "x"; expected an object of strings$/,
  );
});

test('flat readings: a list anywhere is refused, naming its key path', () => {
  for (const p of both({ t: 1, env: { list: [1, 2] } }))
    rejects(() => decodeTelemetry(p, opts), 'BAD_SHAPE', /^reading 0: 'env\.list' is a list/);
  rejects(() => decodeTelemetry(json({ list: [] }), opts), 'BAD_SHAPE', /'list' is a list/);
});

test('explicit readings: metrics and attributes as named, numbers and booleans in attributes kept as text', () => {
  const v = {
    ts: '2026-11-22T12:00:00Z',
    seq: 1,
    metrics: { temperature: 21.5, env: { hum: 40, gone: null }, ok: true },
    attributes: { fw: '1.4.2', rev: 3, beta: false, none: null },
  };
  for (const p of both(v)) {
    assert.deepEqual(decodeTelemetry(p, opts), [
      {
        ts: Date.UTC(2026, 10, 22, 12),
        seq: 1,
        names: ['temperature', 'env.hum', 'ok'],
        values: [21.5, 40, 1],
        attributes: ['fw', '1.4.2', 'rev', '3', 'beta', 'false'],
      },
    ]);
  }
  rejects(
    () => decodeTelemetry(json({ metrics: { t: 1 }, extra: 1 }), opts),
    'BAD_SHAPE',
    /^reading 0: unexpected key 'extra' beside 'metrics'/,
  );
  rejects(
    () => decodeTelemetry(json({ metrics: { t: 'hot' } }), opts),
    'BAD_VALUE',
    /^reading 0: metric 't' is "hot"; expected a number or boolean/,
  );
  rejects(() => decodeTelemetry(json({ metrics: { t: [1] } }), opts), 'BAD_SHAPE', /'t' is a list/);
  rejects(() => decodeTelemetry(json({ metrics: [1] }), opts), 'BAD_SHAPE', /'metrics' is a list/);
  rejects(() => decodeTelemetry(json({ metrics: null }), opts), 'BAD_SHAPE', /'metrics' is null/);
  rejects(
    () => decodeTelemetry(json({ metrics: { t: 1 }, attributes: { a: [1] } }), opts),
    'BAD_ATTRIBUTE',
    /attribute 'a' is a list/,
  );
  rejects(
    () => decodeTelemetry(json({ metrics: { t: 1 }, attributes: { a: { b: 'c' } } }), opts),
    'BAD_ATTRIBUTE',
    /attribute 'a' is an object/,
  );
  rejects(
    () => decodeTelemetry(json({ metrics: { t: 1 }, attributes: [] }), opts),
    'BAD_ATTRIBUTE',
    /'attributes' is a list/,
  );
  rejects(
    () => decodeTelemetry(cbor({ metrics: { t: 1 }, attributes: { a: NaN } }), opts),
    'BAD_ATTRIBUTE',
    /attribute 'a' is NaN/,
  );
  // explicit metrics with nothing in them: a heartbeat with seq, else no metrics
  assert.deepEqual(decodeTelemetry(json({ seq: 5, metrics: {} }), opts)[0].names, []);
  rejects(() => decodeTelemetry(json({ metrics: { t: null } }), opts), 'NO_METRICS');
});

test('a list carries several readings, counted from 0 in messages; a single object is reading 0', () => {
  const r = decodeTelemetry(
    json([
      { seq: 1, t: 1 },
      { seq: 2, t: 2.5 },
    ]),
    opts,
  );
  assert.deepEqual(
    r.map((x) => [x.seq, x.values[0], x.ts]),
    [
      [1, 1, ARRIVAL],
      [2, 2.5, ARRIVAL],
    ],
  );
  rejects(
    () => decodeTelemetry(cbor([{ t: 1 }, { t: 1 }, { t: 1 }, { temp: NaN }]), opts),
    'BAD_VALUE',
    /^reading 3: metric 'temp' is NaN; expected a finite number$/,
  );
  rejects(
    () => decodeTelemetry(json('{"temp": 1e999}'), opts),
    'BAD_VALUE',
    /^reading 0: metric 'temp' is Infinity; expected a finite number$/,
  );
  rejects(() => decodeTelemetry(json([{ t: 1 }, 5]), opts), 'BAD_SHAPE', /^reading 1 is 5; expected an object$/);
  rejects(
    () => decodeTelemetry(json([{ t: 1 }, [{ t: 1 }]]), opts),
    'BAD_SHAPE',
    /^reading 1 is a list; expected an object$/,
  );
  for (const p of both([])) rejects(() => decodeTelemetry(p, opts), 'BAD_SHAPE', /carries no readings/);
  rejects(() => decodeTelemetry(json('"hello"'), opts), 'BAD_CBOR'); // not { or [: read as CBOR
  rejects(
    () => decodeTelemetry(json('5'), { ...opts, contentType: 'application/json' }),
    'BAD_SHAPE',
    /^message is 5; expected a reading object or a list of them$/,
  );
  rejects(() => decodeTelemetry(cbor('x'), opts), 'BAD_SHAPE', /message is "x"/);
});

test('ts: epoch ms, RFC 3339 with offsets and fractions, CBOR dates, or the arrival time', () => {
  const ts = (v: unknown) => decodeTelemetry(json({ ts: v, t: 1 }), opts)[0].ts;
  assert.equal(ts(1732280000123), 1732280000123);
  assert.equal(ts(1732280000123.5), 1732280000123.5);
  assert.equal(ts(1e11), 1e11);
  assert.equal(ts(9_223_372_036_853.5), 9_223_372_036_853.5);
  assert.equal(ts('2026-11-22T12:00:00Z'), Date.UTC(2026, 10, 22, 12));
  assert.equal(ts('2026-11-22T12:00:00.5+02:00'), Date.UTC(2026, 10, 22, 10, 0, 0, 500));
  assert.equal(ts('2026-11-22 12:00:00z'), Date.UTC(2026, 10, 22, 12));
  assert.equal(ts('2026-11-22t12:00:00.123456789-00:30'), Date.UTC(2026, 10, 22, 12, 30) + 123.456789);
  assert.ok(Math.abs(ts('2026-11-22T12:00:00.000001Z') - Date.UTC(2026, 10, 22, 12) - 0.001) < 0.0003); // a microsecond survives (the double resolves ~0.24 µs)
  assert.equal(ts('2016-12-31T23:59:60Z'), Date.UTC(2016, 11, 31, 23, 59, 59)); // leap second: kept in :59
  assert.equal(ts('2024-02-29T00:00:00Z'), Date.UTC(2024, 1, 29));
  assert.equal(ts('2000-02-29T00:00:00Z'), Date.UTC(2000, 1, 29));
  assert.equal(decodeTelemetry(json({ t: 1 }), opts)[0].ts, ARRIVAL);
  // CBOR: tag 1 (cbor-x writes Dates so), tag 0 (RFC 3339 text), and a 64-bit integer
  assert.equal(decodeTelemetry(cbor({ ts: new Date(1732280000999), t: 1 }), opts)[0].ts, 1732280000999);
  assert.equal(
    decodeTelemetry(cmap(['ts', bytes(0xc0, ctext('2026-11-22T12:00:00.25Z'))], ['t', bytes(1)]), opts)[0].ts,
    Date.UTC(2026, 10, 22, 12, 0, 0, 250),
  );
  assert.equal(
    decodeTelemetry(cmap(['ts', bytes(0xc1, 0x1a, [0x67, 0x40, 0xe5, 0xc0])], ['t', bytes(1)]), opts)[0].ts,
    0x6740e5c0 * 1000,
  );
  assert.equal(
    decodeTelemetry(cmap(['ts', bytes(0x1b, [0, 0, 1, 0x93, 0x4f, 0x4c, 0x3c, 0x7b])], ['t', bytes(1)]), opts)[0].ts,
    0x0193_4f4c_3c7b,
  );

  const bad = [
    'yesterday',
    '2026-11-22',
    '2026-13-01T00:00:00Z',
    '2026-02-29T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2026-04-31T00:00:00Z',
    '2026-11-22T24:00:00Z',
    '2026-11-22T12:60:00Z',
    '2026-11-22T12:00:61Z',
    '2026-11-22T12:00:00',
    '2026-11-22T12:00:00.Z',
    '2026-11-22T12:00:00.1234567890Z',
    '2026-11-22T12:00:00+24:00',
    '2026-11-22T12:00:00+02',
    '2026-11-22T12:00:00Z ',
    ' 2026-11-22T12:00:00Z',
    '2026-11-22X12:00:00Z',
    '２026-11-22T12:00:00Z',
    'Sun, 22 Nov 2026 12:00:00 GMT',
    true,
    null,
    {},
    [],
    -1,
    0,
  ];
  for (const b of bad)
    rejects(() => ts(b), 'BAD_TS', /^reading 0: 'ts' is .*; (expected epoch milliseconds|that is before 1973)/);
  rejects(
    () => ts('yesterday'),
    'BAD_TS',
    /^reading 0: 'ts' is "yesterday"; expected epoch milliseconds or an RFC 3339 string/,
  );
  rejects(
    () => ts(1732280000),
    'BAD_TS',
    /^reading 0: 'ts' is 1732280000; that is before 1973; expected epoch milliseconds \(was it sent in seconds\?\)$/,
  );
  rejects(() => ts('0099-01-01T00:00:00Z'), 'BAD_TS', /before 1973/); // Date.UTC would have read 1999
  rejects(() => ts(9_223_372_036_854), 'BAD_TS', /after 2262/);
  rejects(() => ts(1e16), 'BAD_TS', /after 2262/);
  rejects(() => decodeTelemetry(cbor({ ts: NaN, t: 1 }), opts), 'BAD_TS', /'ts' is NaN/);
  rejects(
    () => decodeTelemetry(cmap(['ts', bytes(0xc0, ctext('2026-11-22'))], ['t', bytes(1)]), opts),
    'BAD_TS',
    /tag 0 .* holds "2026-11-22"; expected an RFC 3339/,
  );
  rejects(
    () => decodeTelemetry(cmap(['ts', bytes(0xc0, 0x01)], ['t', bytes(1)]), opts),
    'BAD_CBOR',
    /tag 0 .* must hold an RFC 3339 text string/,
  );
  rejects(
    () => decodeTelemetry(cmap(['ts', bytes(0xc1, ctext('x'))], ['t', bytes(1)]), opts),
    'BAD_CBOR',
    /tag 1 .* must hold a number/,
  );
  rejects(() => decodeTelemetry(cmap(['ts', bytes(0xc1, 0x01)], ['t', bytes(1)]), opts), 'BAD_TS', /before 1973/);
});

test('RFC 3339 parser: own rules, not Date.parse', () => {
  assert.equal(parseRfc3339('1970-01-01T00:00:00Z'), 0);
  // eslint-disable-next-line no-loss-of-precision -- the nearest double is the expected answer
  assert.equal(parseRfc3339('2262-04-11T23:47:16.854775807Z'), 9_223_372_036_854.775807);
  assert.equal(parseRfc3339('2026-11-22T12:00:00.1Z'), Date.UTC(2026, 10, 22, 12, 0, 0, 100));
  assert.equal(parseRfc3339('2026-11-22T12:00:00.12Z'), Date.UTC(2026, 10, 22, 12, 0, 0, 120));
  assert.equal(parseRfc3339('2026-11-22T00:30:00+01:00'), Date.UTC(2026, 10, 21, 23, 30));
  for (let y = 1970; y <= 2400; y += 7) {
    for (const [m, d] of [
      [1, 1],
      [2, 28],
      [3, 1],
      [12, 31],
    ]) {
      const s = `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}T01:02:03Z`;
      assert.equal(parseRfc3339(s), Date.UTC(y, m - 1, d, 1, 2, 3), s);
    }
  }
  assert.ok(Number.isNaN(parseRfc3339('2023-02-29T00:00:00Z')));
  assert.ok(Number.isNaN(parseRfc3339('')));
});

test('seq: an unsigned integer below 2^53, or -1 when absent; a reading of only seq is a heartbeat', () => {
  const seq = (v: unknown) => decodeTelemetry(json({ seq: v, t: 1 }), opts)[0].seq;
  assert.equal(seq(0), 0);
  assert.equal(seq(2 ** 53 - 1), 2 ** 53 - 1);
  assert.ok(Object.is(decodeTelemetry(cbor({ seq: -0, t: 1 }), opts)[0].seq, 0));
  assert.equal(decodeTelemetry(json({ t: 1 }), opts)[0].seq, -1);
  assert.deepEqual(decodeTelemetry(json({ seq: 9 }), opts)[0], {
    ts: ARRIVAL,
    seq: 9,
    names: [],
    values: [],
    attributes: null,
  });
  for (const bad of [-1, 1.5, '3', 2 ** 53, 1e300, null, true, {}])
    rejects(() => seq(bad), 'BAD_SEQ', /^reading 0: 'seq' is .*; expected an unsigned integer below 2\^53$/);
  rejects(() => decodeTelemetry(json({ fw: 'x' }), opts), 'NO_METRICS', /^reading 0 carries no metric/);
  rejects(() => decodeTelemetry(json({ ts: ARRIVAL, gone: null }), opts), 'NO_METRICS');
});

test('names are 1–255 characters without control characters; attribute values at most 4,096 characters', () => {
  assert.equal(decodeTelemetry(json({ ['x'.repeat(255)]: 1 }), opts)[0].names[0].length, 255);
  rejects(
    () => decodeTelemetry(json({ ['x'.repeat(256)]: 1 }), opts),
    'BAD_NAME',
    /is 256 characters; the limit is 255/,
  );
  rejects(
    () => decodeTelemetry(json({ ['x'.repeat(200)]: { ['y'.repeat(55)]: 1 } }), opts),
    'BAD_NAME',
    /is 256 characters/,
  ); // flattened
  rejects(
    () => decodeTelemetry(json({ 'a\u0001': 1 }), opts),
    'BAD_NAME',
    /^reading 0: name 'a\\u0001' contains the control character U\+0001/,
  );
  rejects(
    () => decodeTelemetry(json({ env: { 'del\u007f': 1 } }), opts),
    'BAD_NAME',
    /'env\.del\u007f' contains the control character U\+007F/,
  );
  rejects(() => decodeTelemetry(json({ '': 1 }), opts), 'BAD_NAME', /a key is empty/);
  rejects(() => decodeTelemetry(json({ env: { '': 1 } }), opts), 'BAD_NAME', /a key inside 'env' is empty/);
  rejects(() => decodeTelemetry(json({ t: 1, attributes: { '': 'x' } }), opts), 'BAD_NAME');
  rejects(() => decodeTelemetry(json('{"__proto__": 1}'), opts), 'BAD_NAME', /'__proto__' is not accepted/);
  rejects(() => decodeTelemetry(cmap(['__proto__', bytes(1)]), opts), 'BAD_NAME', /'__proto__' is not accepted/);
  // JSON escapes can spell text that is not Unicode; it could not be encoded in OTLP
  rejects(() => decodeTelemetry(json('{"t\\ud800": 1}'), opts), 'BAD_UTF8', /unpaired UTF-16 surrogate/);
  rejects(
    () => decodeTelemetry(json('{"t": 1, "fw": "v\\udc00"}'), opts),
    'BAD_UTF8',
    /attribute 'fw' holds an unpaired UTF-16 surrogate/,
  );
  assert.deepEqual(decodeTelemetry(json({ 'température 🌡': 1, note: 'ok ✓' }), opts)[0].names, ['température 🌡']);
  const at = (n: number) => json({ t: 1, note: 'n'.repeat(n) });
  assert.equal(decodeTelemetry(at(4096), opts)[0].attributes?.[1].length, 4096);
  rejects(
    () => decodeTelemetry(at(4097), opts),
    'BAD_ATTRIBUTE',
    /^reading 0: attribute 'note' is 4097 characters; the limit is 4096$/,
  );
  rejects(
    () => decodeTelemetry(json({ metrics: { t: 1 }, attributes: { note: 'n'.repeat(4097) } }), opts),
    'BAD_ATTRIBUTE',
    /4097 characters/,
  );
});

test('limits: exactly at each limit passes, one past is rejected with its code', () => {
  const metrics = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`m${i}`, i]));
  for (const p of both(metrics(1000))) assert.equal(decodeTelemetry(p, opts)[0].names.length, 1000);
  for (const p of both(metrics(1001)))
    rejects(() => decodeTelemetry(p, opts), 'TOO_MANY_METRICS', /^reading 0 carries more than 1000 metrics/);
  rejects(() => decodeTelemetry(json({ metrics: { a: metrics(600), b: metrics(401) } }), opts), 'TOO_MANY_METRICS');
  assert.equal(decodeTelemetry(json({ metrics: { a: metrics(600), b: metrics(400) } }), opts)[0].names.length, 1000);

  const list = (n: number) => Array.from({ length: n }, () => ({ t: 1 }));
  for (const p of both(list(10_000))) assert.equal(decodeTelemetry(p, opts).length, 10_000);
  for (const p of both(list(10_001)))
    rejects(
      () => decodeTelemetry(p, opts),
      'TOO_MANY_READINGS',
      /^message carries 10001 readings; the limit is 10000$/,
    );

  const pad = (n: number) => Buffer.concat([json({ t: 1 }), Buffer.alloc(n - json({ t: 1 }).length, 0x20)]);
  assert.equal(decodeTelemetry(pad(DEFAULT_LIMITS.maxBytes), opts).length, 1);
  rejects(
    () => decodeTelemetry(pad(DEFAULT_LIMITS.maxBytes + 1), opts),
    'TOO_LARGE',
    /^payload is 262145 bytes; the limit is 262144$/,
  );
  rejects(
    () => decodeTelemetry(Buffer.alloc(300_000, 0xa0), opts),
    'TOO_LARGE',
    /^payload is 300000 bytes; the limit is 262144$/,
  );
  rejects(() => decodeTelemetry(Buffer.alloc(0), opts), 'EMPTY');

  // depth: a reading is level 1, each object inside one more; a list of readings does not count
  const nest = (levels: number): Record<string, unknown> => {
    let v: Record<string, unknown> = { v: 1 };
    for (let i = 1; i < levels; i++) v = { n: v };
    return v;
  };
  for (const p of [...both(nest(16)), ...both([nest(16)])])
    assert.equal(decodeTelemetry(p, opts)[0].names[0].split('.').length, 16);
  for (const p of [...both(nest(17)), ...both([nest(17)])])
    rejects(() => decodeTelemetry(p, opts), 'TOO_DEEP', /deeper than 16 levels/);
  assert.equal(decodeTelemetry(json({ metrics: nest(15) }), opts)[0].names.length, 1);
  for (const p of both({ metrics: nest(16) })) rejects(() => decodeTelemetry(p, opts), 'TOO_DEEP');

  const small = { ...DEFAULT_LIMITS, maxBytes: 64, maxMetrics: 2, maxReadings: 2, maxDepth: 2 };
  const o = { ...opts, limits: small };
  rejects(() => decodeTelemetry(json({ a: 1, b: 2, c: 3 }), o), 'TOO_MANY_METRICS');
  rejects(() => decodeTelemetry(json([{ a: 1 }, { a: 1 }, { a: 1 }]), o), 'TOO_MANY_READINGS');
  rejects(() => decodeTelemetry(json({ a: { b: { c: 1 } } }), o), 'TOO_DEEP');
  rejects(() => decodeTelemetry(json({ a: 'x'.repeat(64) }), o), 'TOO_LARGE');
  assert.equal(decodeTelemetry(json({ a: { b: 1 } }), o)[0].names[0], 'a.b');
});

test('deep nesting is TOO_DEEP in JSON and CBOR alike, however it is shaped', () => {
  const big = { ...opts, limits: { ...DEFAULT_LIMITS, maxBytes: 4 << 20 } };
  // 17 objects, or 18 lists (a top-level list is level 0), are one level too many
  rejects(() => decodeTelemetry(json('['.repeat(17) + ']'.repeat(17)), big), 'BAD_SHAPE', /reading 0 is a list/);
  rejects(() => decodeTelemetry(bytes(Buffer.alloc(17, 0x81), 0x01), big), 'BAD_SHAPE', /reading 0 is a list/);
  for (const depth of [18, 1000, 200_000]) {
    rejects(() => decodeTelemetry(json('{"a":'.repeat(depth - 1) + '1' + '}'.repeat(depth - 1)), big), 'TOO_DEEP');
    rejects(() => decodeTelemetry(json('['.repeat(depth) + ']'.repeat(depth)), big), 'TOO_DEEP');
    rejects(() => decodeTelemetry(json(`{"t":1,"x":${'['.repeat(depth)}${']'.repeat(depth)}}`), big), 'TOO_DEEP');
    rejects(() => decodeEvents(json(`{"body":${'['.repeat(depth)}${']'.repeat(depth)}}`), big), 'TOO_DEEP');
    rejects(() => decodeTelemetry(bytes(Buffer.alloc(depth, 0x81), 0x01), big), 'TOO_DEEP');
    rejects(
      () =>
        decodeTelemetry(
          bytes(
            Buffer.alloc(depth * 3).map((_, i) => [0xa1, 0x61, 0x61][i % 3]),
            0x01,
          ),
          big,
        ),
      'TOO_DEEP',
    );
  }
});

test('encoding: the content-type wins, otherwise JSON is sniffed and the rest is CBOR', () => {
  assert.equal(detectEncoding(json('  \n\t{"a":1}')), 'json');
  assert.equal(detectEncoding(json('[1]')), 'json');
  assert.equal(detectEncoding(bytes([0xef, 0xbb, 0xbf], '{}')), 'json');
  assert.equal(detectEncoding(cbor({ a: 1 })), 'cbor');
  assert.equal(detectEncoding(cbor({ a: 1 }), 'application/json; charset=utf-8'), 'json');
  assert.equal(detectEncoding(json('{"a":1}'), 'Application/CBOR'), 'cbor');
  assert.equal(detectEncoding(json('{"a":1}'), ' application/cbor ; x=y'), 'cbor');
  assert.equal(detectEncoding(json('{"a":1}'), ''), 'json');
  for (const t of ['text/plain', 'application/json5', 'application/cbor-seq', 'application/octet-stream']) {
    rejects(() => detectEncoding(json('{}'), t), 'BAD_CONTENT_TYPE', /send application\/json or application\/cbor/);
    rejects(() => decodeTelemetry(json('{"t":1}'), { ...opts, contentType: t }), 'BAD_CONTENT_TYPE');
  }
  // the content-type decides even when the bytes look like the other encoding
  rejects(() => decodeTelemetry(json('{"t":1}'), { ...opts, contentType: 'application/cbor' }), 'BAD_CBOR');
  rejects(
    () => decodeTelemetry(cbor({ t: 2 }), { ...opts, contentType: 'application/json' }),
    /* 0xb9 is not UTF-8 */ 'BAD_UTF8',
  );
  assert.equal(decodeTelemetry(cbor({ t: 2 }), { ...opts, contentType: 'application/cbor' })[0].values[0], 2);
  assert.equal(decodeTelemetry(bytes([0xef, 0xbb, 0xbf], '{"t":3}'), opts)[0].values[0], 3);
  assert.equal(decodeTelemetry(new Uint8Array(json({ t: 4 })), opts)[0].values[0], 4); // not only Buffers
});

test('JSON: invalid UTF-8 and syntax errors are told apart, with the position', () => {
  rejects(
    () => decodeTelemetry(bytes('{"fw":"', [0xc3, 0x28], '","t":1}'), opts),
    'BAD_UTF8',
    /^JSON payload is not valid UTF-8: byte 7 \(0xc3\)/,
  );
  rejects(() => decodeTelemetry(bytes('{"t":1,"x":"', [0xed, 0xa0, 0x80], '"}'), opts), 'BAD_UTF8'); // an encoded surrogate
  rejects(() => decodeTelemetry(json('{"t":1,}'), opts), 'BAD_JSON', /^payload is not valid JSON: /);
  rejects(() => decodeTelemetry(json('{"t":1'), opts), 'BAD_JSON');
  rejects(() => decodeTelemetry(json('   '), { ...opts, contentType: 'application/json' }), 'BAD_JSON');
});

test('CBOR: strict structure, UTF-8, keys, tags and simple values', () => {
  rejects(
    () => decodeTelemetry(bytes(0xa1, 0x63, [0xff, 0xfe, 0x41], 0x01), opts),
    'BAD_UTF8',
    /map key is not valid UTF-8/,
  );
  rejects(
    () => decodeTelemetry(bytes(0xa2, ctext('t'), 0x01, ctext('fw'), 0x62, [0xc3, 0x28]), opts),
    'BAD_UTF8',
    /^CBOR at byte 7: a text string is not valid UTF-8$/,
  );
  rejects(() => decodeTelemetry(bytes(0xa1, 0x78, 80, 'x'.repeat(79), 0xff), opts), 'BAD_UTF8'); // long strings use Node's validator
  rejects(() => decodeTelemetry(bytes(0xa1, 0x01, 0x02), opts), 'BAD_CBOR', /map keys must be text strings/);
  rejects(() => decodeTelemetry(bytes(0xa1, 0x41, 0x74, 0x02), opts), 'BAD_CBOR', /map keys must be text strings/); // a byte-string key
  rejects(() => decodeTelemetry(bytes(0xa1, ctext('t'), 0xf7), opts), 'BAD_CBOR', /"undefined" is not accepted/);
  rejects(() => decodeTelemetry(bytes(0xa1, ctext('t'), 0xf0), opts), 'BAD_CBOR', /simple value 16/);
  rejects(() => decodeTelemetry(bytes(0xa1, ctext('t'), 0xf8, 0xff), opts), 'BAD_CBOR', /simple value 255/);
  rejects(
    () => decodeTelemetry(bytes(0xa1, ctext('t'), 0xd8, 0x40, 0x41, 0x00), opts),
    'BAD_CBOR',
    /tag 64 is not accepted/,
  );
  rejects(() => decodeTelemetry(bytes(0xa1, ctext('t'), 0xc2, 0x41, 0x01), opts), 'BAD_CBOR', /tag 2 is not accepted/);
  rejects(() => decodeTelemetry(bytes(cbor({ t: 1 }), 0x01), opts), 'BAD_CBOR', /more bytes follow the first item/);
  rejects(() => decodeTelemetry(bytes(0xa1, ctext('t'), 0x1c), opts), 'BAD_CBOR', /reserved header value 28/);
  rejects(() => decodeTelemetry(bytes(0xa1, ctext('t'), 0xff), opts), 'BAD_CBOR', /"break"/);
  rejects(() => decodeTelemetry(bytes(0xa1, ctext('t'), 0x1f), opts), 'BAD_CBOR', /indefinite length/);
  const whole = cbor({ temperature: 21.5, fw: '1.4.2' });
  for (let n = 1; n < whole.length; n++)
    rejects(() => decodeTelemetry(whole.subarray(0, n), opts), 'BAD_CBOR', /truncated/);
  rejects(
    () => decodeTelemetry(bytes(0x9a, [0xff, 0xff, 0xff, 0xff]), opts),
    'BAD_CBOR',
    /an array claims 4294967295 entries but only 0 bytes remain/,
  );
  rejects(
    () => decodeTelemetry(bytes(0xbb, [0, 0, 0, 1, 0, 0, 0, 0], 0x01), opts),
    'BAD_CBOR',
    /a map claims 4294967296 entries/,
  );
  rejects(
    () => decodeTelemetry(bytes(0xa1, ctext('t'), 0x7a, [0xff, 0xff, 0xff, 0xff], 'x'), opts),
    'BAD_CBOR',
    /a text string claims 4294967295 bytes/,
  );
  for (const special of [
    [0xf9, 0x7e, 0x00],
    [0xf9, 0x7c, 0x00],
    [0xfa, 0x7f, 0xc0, 0, 0],
    [0xfa, 0xff, 0x80, 0, 0],
    [0xfb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0],
  ]) {
    rejects(
      () => decodeTelemetry(bytes(0xa1, ctext('t'), special), opts),
      'BAD_VALUE',
      /^reading 0: metric 't' is (NaN|-?Infinity); expected a finite number$/,
    );
  }
  assert.deepEqual(decodeTelemetry(bytes(0xa1, ctext('t'), [0xf9, 0x3c, 0x00]), opts)[0].values, [1]); // half-precision 1.0
  // indefinite-length maps and arrays are fine; chunked strings are refused clearly
  assert.deepEqual(decodeTelemetry(bytes(0xbf, ctext('t'), 0x05, 0xff), opts)[0].values, [5]);
  assert.equal(decodeTelemetry(bytes(0x9f, 0xa1, ctext('t'), 0x05, 0xff), opts).length, 1);
  rejects(
    () => decodeTelemetry(bytes(0xbf, 0x7f, ctext('t'), 0xff, 0x05, 0xff), opts),
    'BAD_CBOR',
    /indefinite-length text strings are not accepted/,
  );
  rejects(() => decodeTelemetry(bytes(0xbf, ctext('t'), 0x05), opts), 'BAD_CBOR', /not terminated/);
  // the self-described CBOR prefix, only at the start
  assert.deepEqual(decodeTelemetry(bytes([0xd9, 0xd9, 0xf7], cbor({ t: 6 })), opts)[0].values, [6]);
  rejects(
    () => decodeTelemetry(bytes(0xa1, ctext('t'), [0xd9, 0xd9, 0xf7], 0x01), opts),
    'BAD_CBOR',
    /may only open the payload/,
  );
  rejects(() => decodeTelemetry(bytes([0xd9, 0xd9, 0xf7, 0xd9, 0xd9, 0xf7], cbor({ t: 6 })), opts), 'BAD_CBOR');
  // byte strings are well-formed but not a metric or attribute
  rejects(() => decodeTelemetry(bytes(0xa1, ctext('t'), 0x41, 0x01), opts), 'BAD_VALUE', /'t' is a byte string/);
  // a 64-bit integer is a number, as in JSON
  assert.deepEqual(decodeTelemetry(bytes(0xa1, ctext('t'), 0x1b, [0, 0, 0, 1, 0, 0, 0, 0]), opts)[0].values, [2 ** 32]);
  assert.deepEqual(decodeTelemetry(bytes(0xa1, ctext('t'), 0x3b, [0, 0, 0, 1, 0, 0, 0, 0]), opts)[0].values, [
    -(2 ** 32) - 1,
  ]);
});

test('events: severity, structured body and attributes', () => {
  const v = {
    ts: 1732280000000,
    severity: 'Error',
    body: { code: 'E42', temps: [1, 2.5], nested: { ok: true, none: null } },
    attributes: { valve: 3, ok: false, site: 'x', gone: null },
  };
  for (const p of both(v)) {
    assert.deepEqual(decodeEvents(p, opts), [
      {
        ts: 1732280000000,
        severityNumber: 17,
        severityText: 'Error',
        body: { code: 'E42', temps: [1, 2.5], nested: { ok: true, none: null } },
        attributes: ['valve', 3, 'ok', false, 'site', 'x'],
      },
    ]);
  }
  assert.deepEqual(decodeEvents(json([{ body: 'door open' }, { body: 7, attributes: {} }]), opts), [
    { ts: ARRIVAL, severityNumber: 0, severityText: '', body: 'door open', attributes: null },
    { ts: ARRIVAL, severityNumber: 0, severityText: '', body: 7, attributes: null },
  ]);
  for (const body of ['', false, [1, 'a'], { a: [] }, -0.5])
    assert.deepEqual(decodeEvents(json({ body }), opts)[0].body, body);
  for (const [sev, n] of [
    ['trace', 1],
    ['DEBUG', 5],
    ['info', 9],
    ['Warn', 13],
    ['error', 17],
    ['fatal', 21],
  ] as const) {
    const [e] = decodeEvents(json({ severity: sev, body: 'x' }), opts);
    assert.deepEqual([e.severityNumber, e.severityText], [n, sev]);
  }
  // a CBOR date in the body becomes its RFC 3339 text
  assert.deepEqual(decodeEvents(cbor({ body: { at: new Date(Date.UTC(2026, 10, 22)) } }), opts)[0].body, {
    at: '2026-11-22T00:00:00.000Z',
  });
  assert.equal(decodeEvents(json({ ts: '2026-11-22T12:00:00Z', body: 'x' }), opts)[0].ts, Date.UTC(2026, 10, 22, 12));
});

test('events: clear refusals naming the event and the field', () => {
  rejects(
    () => decodeEvents(json({ severity: 'loud', body: 'x' }), opts),
    'BAD_EVENT',
    /^event 0: 'severity' is "loud"; expected one of trace, debug, info, warn, error, fatal/,
  );
  rejects(() => decodeEvents(json({ severity: 9, body: 'x' }), opts), 'BAD_EVENT', /'severity' is 9/);
  rejects(
    () => decodeEvents(json([{ body: 'x' }, { severity: 'info' }]), opts),
    'BAD_EVENT',
    /^event 1: 'body' is missing/,
  );
  rejects(() => decodeEvents(json({ body: null }), opts), 'BAD_EVENT', /'body' is null/);
  rejects(
    () => decodeEvents(json({ body: 'x', colour: 'red' }), opts),
    'BAD_EVENT',
    /^event 0: unexpected key 'colour'/,
  );
  rejects(
    () => decodeEvents(cbor({ body: { v: [1, Infinity] } }), opts),
    'BAD_EVENT',
    /^event 0: 'body\.v\[1\]' is Infinity; expected a finite number$/,
  );
  rejects(
    () => decodeEvents(cmap(['body', cmap(['raw', bytes(0x41, 0x01)])]), opts),
    'BAD_EVENT',
    /'body\.raw' is a byte string/,
  );
  rejects(() => decodeEvents(json('{"body": {"a": {"__proto__": 1}}}'), opts), 'BAD_NAME', /__proto__/);
  rejects(() => decodeEvents(json('{"body": "\\ud800"}'), opts), 'BAD_UTF8');
  rejects(
    () => decodeEvents(json({ body: 'x', attributes: { a: { b: 1 } } }), opts),
    'BAD_ATTRIBUTE',
    /^event 0: attribute 'a' is an object/,
  );
  rejects(
    () => decodeEvents(json({ body: 'x', attributes: 'a' }), opts),
    'BAD_ATTRIBUTE',
    /'attributes' is "a"; expected an object/,
  );
  rejects(
    () => decodeEvents(json({ body: 'x', attributes: { a: 'n'.repeat(4097) } }), opts),
    'BAD_ATTRIBUTE',
    /4097 characters/,
  );
  rejects(() => decodeEvents(json({ body: 'x', ts: 'now' }), opts), 'BAD_TS', /^event 0: 'ts' is "now"/);
  rejects(() => decodeEvents(json([]), opts), 'BAD_SHAPE', /carries no events/);
  rejects(
    () => decodeEvents(json(Array.from({ length: 10_001 }, () => ({ body: 'x' }))), opts),
    'TOO_MANY_READINGS',
    /10001 events/,
  );
  let body: unknown = 1;
  for (let i = 0; i < 15; i++) body = [body];
  assert.ok(decodeEvents(json({ body }), opts)); // event level 1 + 15 levels of lists = 16
  rejects(() => decodeEvents(json({ body: [body] }), opts), 'TOO_DEEP', /'body(\[0\])+' nests deeper than 16 levels/);
});

test('attributes per reading are bounded, since each is copied onto every data point', async () => {
  const { decodeTelemetry: decode } = await import('../../../../protocol/payload/decode.js');
  const { PayloadError: PE } = await import('../../../../protocol/errors.js');
  const many = (n: number, len = 1) =>
    Object.fromEntries(Array.from({ length: n }, (_, i) => [`a${i}`, 'x'.repeat(len)]));
  const opts = { arrivalMs: 1732280000000 };
  assert.equal(decode(Buffer.from(JSON.stringify({ t: 1, attributes: many(64) })), opts)[0].attributes!.length, 128);
  assert.throws(
    () => decode(Buffer.from(JSON.stringify({ t: 1, attributes: many(65) })), opts),
    (e: unknown) =>
      e instanceof PE && e.code === 'OTLPEDGE_PAYLOAD_BAD_ATTRIBUTE' && /more than 64 attributes/.test(e.message),
  );
  assert.throws(
    () => decode(Buffer.from(JSON.stringify({ t: 1, ...many(3, 4000) })), opts),
    (e: unknown) => e instanceof PE && /total more than 8192 characters/.test(e.message),
  );
});
