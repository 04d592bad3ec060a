import { mulberry32 } from '../../../helpers/random.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from 'cbor-x';
import { decodeEvents, decodeTelemetry } from '../../../../protocol/payload/decode.js';
import { PayloadError, PayloadErrorCodes as C } from '../../../../protocol/errors.js';
import {
  DEFAULT_LIMITS,
  type DecodeOptions,
  type DeviceEvent,
  type Reading,
} from '../../../../protocol/payload/types.js';

/**
 * Randomized robustness of the device payload codec: every input either decodes into well-formed readings or events,
 * or is rejected with a PayloadError carrying a catalogued code — never another exception, never a hang. Categories
 * that are always invalid must be rejected with their specific code. Reproduce a failure with FUZZ_SEED=<seed>.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 20261122);

const rand = mulberry32(SEED);
const int = (n: number): number => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];

const CODES = new Set<string>(Object.values(C));
const ARRIVAL = 1732280000000;
const opts: DecodeOptions = { arrivalMs: ARRIVAL };
const roomy: DecodeOptions = { arrivalMs: ARRIVAL, limits: { ...DEFAULT_LIMITS, maxBytes: 4 << 20 } };
const cborType: DecodeOptions = { arrivalMs: ARRIVAL, contentType: 'application/cbor' };
const counts = { inputs: 0, rejected: 0, accepted: 0 };

const fail = (label: string, why: string): never => assert.fail(`FUZZ_SEED=${SEED}, ${label}: ${why}`);

function checkReadings(out: Reading[], label: string): void {
  if (!Array.isArray(out) || out.length === 0) fail(label, 'no readings returned');
  for (const r of out) {
    if (!(r.ts >= 1e11 && r.ts < 9_223_372_036_854)) fail(label, `ts ${r.ts} out of range`);
    if (!(r.seq === -1 || (Number.isSafeInteger(r.seq) && r.seq >= 0))) fail(label, `seq ${r.seq}`);
    if (r.names.length !== r.values.length) fail(label, 'names and values differ in length');
    if (r.names.length === 0 && r.seq < 0) fail(label, 'a reading without metrics or seq');
    for (const n of r.names)
      if (typeof n !== 'string' || n.length === 0 || n.length > 255) fail(label, `bad name ${JSON.stringify(n)}`);
    for (const v of r.values) if (typeof v !== 'number' || !Number.isFinite(v)) fail(label, `value ${v} is not finite`);
    if (r.attributes !== null) {
      if (r.attributes.length === 0 || r.attributes.length % 2 !== 0) fail(label, 'attributes not in key/value pairs');
      for (const a of r.attributes) if (typeof a !== 'string' || a.length > 4096) fail(label, 'bad attribute');
    }
  }
}

function finiteAnyValue(v: unknown): boolean {
  if (typeof v === 'number') return Number.isFinite(v);
  if (Array.isArray(v)) return v.every(finiteAnyValue);
  if (v !== null && typeof v === 'object') return Object.values(v).every(finiteAnyValue);
  return typeof v === 'string' || typeof v === 'boolean' || v === null;
}

function checkEvents(out: DeviceEvent[], label: string): void {
  if (!Array.isArray(out) || out.length === 0) fail(label, 'no events returned');
  for (const e of out) {
    if (!(e.ts >= 1e11 && e.ts < 9_223_372_036_854)) fail(label, `ts ${e.ts} out of range`);
    if (![0, 1, 5, 9, 13, 17, 21].includes(e.severityNumber)) fail(label, `severity ${e.severityNumber}`);
    if (e.body === undefined || !finiteAnyValue(e.body)) fail(label, 'body not a finite AnyValue');
    if (e.attributes !== null && !finiteAnyValue(e.attributes)) fail(label, 'attributes not finite');
  }
}

/** Decodes one input; returns the error code, or null when it was valid (after checking the output is sane). */
function attempt(
  input: Uint8Array,
  label: string,
  kind: 'telemetry' | 'events' = 'telemetry',
  o: DecodeOptions = opts,
): string | null {
  counts.inputs++;
  try {
    if (kind === 'telemetry') checkReadings(decodeTelemetry(input, o), label);
    else checkEvents(decodeEvents(input, o), label);
    counts.accepted++;
    return null;
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    if (!(e instanceof PayloadError) || !CODES.has(e.code)) {
      fail(
        label,
        `expected a PayloadError, got ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}`,
      );
    }
    const err = e as PayloadError;
    if (typeof err.message !== 'string' || err.message.length === 0) fail(label, 'an empty message');
    counts.rejected++;
    return err.code;
  }
}

/** Asserts the input is rejected with exactly `code`. */
function expectCode(
  input: Uint8Array,
  code: string,
  label: string,
  kind: 'telemetry' | 'events' = 'telemetry',
  o: DecodeOptions = opts,
): void {
  const got = attempt(input, label, kind, o);
  if (got !== code) fail(label, `expected ${code}, got ${got ?? 'an accepted payload'}`);
}

const validReadings: unknown[] = [
  { ts: 1732280000123, seq: 42, temperature: 21.5, door_open: false, env: { hum: 40, unit: 'pct' }, fw: '1.4.2' },
  {
    ts: '2026-11-22T12:00:00.5Z',
    seq: 7,
    metrics: { temperature: 21.5, env: { hum: 40 } },
    attributes: { fw: '1.4.2', rev: 3 },
  },
  [{ seq: 1, v: 1 }, { seq: 2, v: 2.25, note: 'ok' }, { seq: 3 }],
];
const validEvents: unknown[] = [
  { ts: 1732280000000, severity: 'warn', body: { code: 'E1', temps: [1, 2.5] }, attributes: { valve: 3, site: 'x' } },
  [{ body: 'door open' }, { severity: 'INFO', body: ['a', 1, true, null] }],
];
const jsonOf = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const cborOf = (v: unknown): Buffer => Buffer.from(encode(v));
const valid: [Buffer, 'telemetry' | 'events'][] = [
  ...validReadings.flatMap((v) => [jsonOf(v), cborOf(v)].map((b) => [b, 'telemetry'] as [Buffer, 'telemetry'])),
  ...validEvents.flatMap((v) => [jsonOf(v), cborOf(v)].map((b) => [b, 'events'] as [Buffer, 'events'])),
];

test(`the valid seeds decode (FUZZ_SEED=${SEED})`, () => {
  for (const [b, kind] of valid) assert.equal(attempt(b, 'valid seed', kind), null);
});

test(`truncations and byte flips of valid payloads end in typed rejections (FUZZ_SEED=${SEED})`, () => {
  for (const [v, kind] of valid)
    for (let n = 0; n < v.length; n++) attempt(v.subarray(0, n), `${kind} truncated to ${n} of ${v.length}`, kind);
  for (let i = 0; i < 3000; i++) {
    const [orig, kind] = pick(valid);
    const v = Buffer.from(orig);
    for (let k = 0; k <= int(4); k++) v[int(v.length)] = int(256);
    attempt(v, `flip ${i} of ${orig.toString('hex')} → ${v.toString('hex')}`, kind);
  }
});

test(`a wrong type in any field is a typed rejection, in JSON and CBOR (FUZZ_SEED=${SEED})`, () => {
  const wrong: unknown[] = [
    null,
    true,
    false,
    -1,
    0,
    1.5,
    'x',
    '',
    [],
    [1, [2]],
    {},
    { a: { b: {} } },
    1e308,
    2 ** 60,
    '2026-99-99T00:00:00Z',
    'n'.repeat(5000),
    NaN,
    Infinity,
    -Infinity,
    new Date(0),
  ];
  const bases = [...validReadings.slice(0, 2), ...validEvents.slice(0, 1)] as Record<string, unknown>[];
  // every field of every base, with every wrong value, both encodings
  for (const [bi, base] of bases.entries()) {
    const kind = bi < 2 ? 'telemetry' : 'events';
    const paths: string[][] = [];
    const walk = (o: Record<string, unknown>, p: string[]) => {
      for (const k of Object.keys(o)) {
        paths.push([...p, k]);
        const v = o[k];
        if (v !== null && typeof v === 'object' && !Array.isArray(v)) walk(v as Record<string, unknown>, [...p, k]);
      }
    };
    walk(base, []);
    for (const path of paths) {
      for (const w of wrong) {
        const copy = structuredClone(base);
        let at: Record<string, unknown> = copy;
        for (const k of path.slice(0, -1)) at = at[k] as Record<string, unknown>;
        at[path[path.length - 1]] = w;
        attempt(cborOf(copy), `cbor ${kind} ${path.join('.')} = ${String(w)}`, kind);
        if (typeof w !== 'number' || Number.isFinite(w))
          attempt(jsonOf(copy), `json ${kind} ${path.join('.')} = ${String(w)}`, kind);
      }
    }
  }
  // and random combinations: a wrong value somewhere, an unknown key or two
  for (let i = 0; i < 1500; i++) {
    const bi = int(bases.length);
    const kind = bi < 2 ? 'telemetry' : 'events';
    const copy = structuredClone(bases[bi]);
    copy[pick(Object.keys(copy))] = pick(wrong);
    if (rand() < 0.3) copy[pick(['extra', 'ts', 'seq', 'metrics', 'attributes', 'body', 'severity', ''])] = pick(wrong);
    attempt(
      rand() < 0.5 ? jsonOf(copy) : cborOf(copy),
      `random wrong type ${i}: ${JSON.stringify(copy)?.slice(0, 200)}`,
      kind,
    );
  }
});

test(`deep nesting is always TOO_DEEP (or TOO_LARGE within the size limit), JSON and CBOR, up to 100,000 levels (FUZZ_SEED=${SEED})`, () => {
  for (const depth of [18, 20, 100, 1000, 10_000, 100_000]) {
    const inputs: [string, Buffer, 'telemetry' | 'events'][] = [
      ['json objects', Buffer.from('{"a":'.repeat(depth) + '1' + '}'.repeat(depth)), 'telemetry'],
      ['json lists', Buffer.from('['.repeat(depth) + ']'.repeat(depth)), 'telemetry'],
      ['json list in a reading', Buffer.from(`{"t":1,"x":${'['.repeat(depth)}1${']'.repeat(depth)}}`), 'telemetry'],
      ['json explicit metrics', Buffer.from(`{"metrics":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`), 'telemetry'],
      ['json event body', Buffer.from(`{"body":${'{"a":['.repeat(depth)}1${']}'.repeat(depth)}}`), 'events'],
      ['cbor arrays', Buffer.concat([Buffer.alloc(depth, 0x81), Buffer.from([0x01])]), 'telemetry'],
      ['cbor indefinite arrays', Buffer.concat([Buffer.alloc(depth, 0x9f), Buffer.alloc(depth, 0xff)]), 'telemetry'],
      [
        'cbor maps',
        Buffer.concat([Buffer.alloc(depth * 3).map((_, i) => [0xa1, 0x61, 0x61][i % 3]), Buffer.from([0x01])]),
        'telemetry',
      ],
      [
        'cbor event body',
        Buffer.concat([
          Buffer.from([0xa1, 0x64, ...Buffer.from('body')]),
          Buffer.alloc(depth * 3).map((_, i) => [0xa1, 0x61, 0x61][i % 3]),
          Buffer.from([0x01]),
        ]),
        'events',
      ],
    ];
    for (const [what, input, kind] of inputs) {
      expectCode(input, C.TOO_DEEP, `${what}, depth ${depth}`, kind, roomy);
      const code = attempt(input, `${what}, depth ${depth}, default limits`, kind);
      if (code !== C.TOO_DEEP && code !== C.TOO_LARGE)
        fail(`${what}, depth ${depth}`, `expected TOO_DEEP or TOO_LARGE, got ${code}`);
    }
  }
  // random nesting of objects and lists, a few levels past the limit
  for (let i = 0; i < 500; i++) {
    const depth = 17 + int(40);
    let v: unknown = 1;
    for (let d = 0; d < depth; d++) v = rand() < 0.5 ? [v] : { [pick(['a', 'b', 'metrics', 'body'])]: v };
    const reading = { t: 1, [pick(['x', 'env', 'attributes'])]: v };
    expectCode(jsonOf(reading), C.TOO_DEEP, `random deep reading ${i}`);
    expectCode(cborOf(reading), C.TOO_DEEP, `random deep reading ${i} (cbor)`);
    expectCode(cborOf({ body: v }), C.TOO_DEEP, `random deep event ${i} (cbor)`, 'events');
  }
});

test(`huge claimed lengths and too many readings are rejected without allocating (FUZZ_SEED=${SEED})`, () => {
  const heads = [
    [0x9a, 0xff, 0xff, 0xff, 0xff],
    [0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    [0x9b, 0, 0, 0, 1, 0, 0, 0, 0],
    [0xba, 0xff, 0xff, 0xff, 0xff],
    [0xbb, 0, 0, 0, 1, 0, 0, 0, 0],
    [0x7a, 0xff, 0xff, 0xff, 0xff],
    [0x5a, 0xff, 0xff, 0xff, 0xff],
    [0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  ];
  for (let i = 0; i < 400; i++) {
    const head = pick(heads);
    const tail = Array.from({ length: int(64) }, () => int(256));
    // (0x7b and 0x5b are also '{' and '[': the content-type keeps them CBOR)
    expectCode(
      Buffer.from([...head, ...tail]),
      C.BAD_CBOR,
      `claims ${Buffer.from(head).toString('hex')} at the top`,
      'telemetry',
      cborType,
    );
    // the same header as a value inside an otherwise valid reading
    expectCode(
      Buffer.from([0xa2, 0x61, 0x74, 0x01, 0x61, 0x78, ...head, ...tail]),
      C.BAD_CBOR,
      `claims ${Buffer.from(head).toString('hex')} as a value`,
    );
  }
  const many = Array.from({ length: 10_001 }, (_, i) => ({ seq: i, v: 1 }));
  expectCode(jsonOf(many), C.TOO_MANY_READINGS, '10,001 JSON readings');
  expectCode(cborOf(many), C.TOO_MANY_READINGS, '10,001 CBOR readings');
  expectCode(jsonOf(many.map(() => ({ body: 'x' }))), C.TOO_MANY_READINGS, '10,001 JSON events', 'events');
  assert.equal(attempt(jsonOf(many.slice(0, 10_000)), '10,000 JSON readings'), null);
});

test(`invalid UTF-8 is always BAD_UTF8: JSON text, CBOR text values and CBOR map keys (FUZZ_SEED=${SEED})`, () => {
  const badSeqs = [
    [0xff],
    [0xfe],
    [0x80],
    [0xbf],
    [0xc3, 0x28],
    [0xc0, 0xaf],
    [0xc1, 0xbf],
    [0xe2, 0x28, 0xa1],
    [0xe0, 0x80, 0xaf],
    [0xed, 0xa0, 0x80],
    [0xed, 0xbf, 0xbf],
    [0xf0, 0x28, 0x8c, 0x28],
    [0xf0, 0x80, 0x80, 0xaf],
    [0xf4, 0x90, 0x80, 0x80],
    [0xf5, 0x80, 0x80, 0x80],
    [0xe2, 0x82],
    [0xf0, 0x9f, 0x98],
  ];
  for (let i = 0; i < 700; i++) {
    const bad = pick(badSeqs);
    const pad = Buffer.from('x'.repeat(int(3) === 0 ? 70 + int(50) : int(8))); // long strings take Node's validator
    const text = Buffer.concat([
      pad.subarray(0, int(pad.length + 1)),
      Buffer.from(bad),
      pad.subarray(0, int(pad.length + 1)),
    ]);
    expectCode(
      Buffer.concat([Buffer.from('{"fw":"'), text, Buffer.from('","v":1}')]),
      C.BAD_UTF8,
      `json value ${text.toString('hex')}`,
    );
    expectCode(
      Buffer.concat([Buffer.from('{"'), text, Buffer.from('":1}')]),
      C.BAD_UTF8,
      `json key ${text.toString('hex')}`,
    );
    expectCode(
      Buffer.concat([Buffer.from('{"v":1}'), Buffer.from(bad)]),
      C.BAD_UTF8,
      `json trailing ${Buffer.from(bad).toString('hex')}`,
    );
    const head = text.length < 24 ? [0x60 | text.length] : [0x78, text.length];
    expectCode(
      Buffer.from([0xa2, 0x61, 0x76, 0x01, 0x62, 0x66, 0x77, ...head, ...text]),
      C.BAD_UTF8,
      `cbor value ${text.toString('hex')}`,
    );
    expectCode(Buffer.from([0xa1, ...head, ...text, 0x01]), C.BAD_UTF8, `cbor key ${text.toString('hex')}`);
    expectCode(
      Buffer.from([0xa1, 0x64, ...Buffer.from('body'), 0xa1, ...head, ...text, 0x01]),
      C.BAD_UTF8,
      `cbor event body key ${text.toString('hex')}`,
      'events',
    );
  }
});

test(`NaN and ±Infinity in CBOR, half, single and double precision, are refused in every numeric field (FUZZ_SEED=${SEED})`, () => {
  const specials = [
    [0xf9, 0x7e, 0x00],
    [0xf9, 0x7c, 0x00],
    [0xf9, 0xfc, 0x00],
    [0xf9, 0x7e, 0x01],
    [0xfa, 0x7f, 0xc0, 0, 0],
    [0xfa, 0x7f, 0x80, 0, 0],
    [0xfa, 0xff, 0x80, 0, 0],
    [0xfa, 0x7f, 0x80, 0, 1],
    [0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0],
    [0xfb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0],
    [0xfb, 0xff, 0xf0, 0, 0, 0, 0, 0, 0],
    [0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  ];
  const key = (s: string) => [0x60 | s.length, ...Buffer.from(s)];
  for (let i = 0; i < 300; i++) {
    const s = pick(specials);
    expectCode(Buffer.from([0xa1, ...key('v'), ...s]), C.BAD_VALUE, `flat metric ${Buffer.from(s).toString('hex')}`);
    expectCode(
      Buffer.from([0xa1, ...key('env'), 0xa1, ...key('t'), ...s]),
      C.BAD_VALUE,
      `nested metric ${Buffer.from(s).toString('hex')}`,
    );
    expectCode(
      Buffer.from([0xa1, ...key('metrics'), 0xa1, ...key('t'), ...s]),
      C.BAD_VALUE,
      `explicit metric ${Buffer.from(s).toString('hex')}`,
    );
    expectCode(
      Buffer.from([0x82, 0xa1, ...key('v'), 0x01, 0xa1, ...key('v'), ...s]),
      C.BAD_VALUE,
      `metric of reading 1 ${Buffer.from(s).toString('hex')}`,
    );
    expectCode(
      Buffer.from([0xa2, ...key('v'), 0x01, ...key('ts'), ...s]),
      C.BAD_TS,
      `ts ${Buffer.from(s).toString('hex')}`,
    );
    expectCode(
      Buffer.from([0xa2, ...key('v'), 0x01, ...key('seq'), ...s]),
      C.BAD_SEQ,
      `seq ${Buffer.from(s).toString('hex')}`,
    );
    expectCode(
      Buffer.from([0xa1, ...key('body'), 0x82, 0x01, ...s]),
      C.BAD_EVENT,
      `event body ${Buffer.from(s).toString('hex')}`,
      'events',
    );
  }
});

test(`oversize payloads are always TOO_LARGE, whatever they hold (FUZZ_SEED=${SEED})`, () => {
  for (let i = 0; i < 30; i++) {
    const extra = pick([1, 2, 100, 4096, 1 << 20]);
    const big = Buffer.alloc(DEFAULT_LIMITS.maxBytes + extra, pick([0x7b, 0x20, 0x00, 0xa1, 0xff]));
    expectCode(big, C.TOO_LARGE, `oversize +${extra}`, pick(['telemetry', 'events'] as const));
  }
  const filler = Buffer.from(JSON.stringify({ t: 1, note: 'x'.repeat(DEFAULT_LIMITS.maxBytes) }));
  expectCode(filler, C.TOO_LARGE, 'oversize valid JSON');
  expectCode(cborOf({ t: 1, note: 'x'.repeat(DEFAULT_LIMITS.maxBytes) }), C.TOO_LARGE, 'oversize valid CBOR');
});

test(`random bytes and random structures decode or are rejected with a code; JSON and CBOR agree (FUZZ_SEED=${SEED})`, () => {
  for (let i = 0; i < 2500; i++) {
    const b = Uint8Array.from({ length: 1 + int(64) }, () => int(256));
    attempt(b, `random bytes ${Buffer.from(b).toString('hex')}`, pick(['telemetry', 'events'] as const));
  }
  const leaf = (): unknown =>
    pick([
      () => int(1000),
      () => rand() * 100 - 50,
      () => rand() < 0.5,
      () => null,
      () => pick(['', 'x', 'v1.4', 'ok ✓', '\u0001']),
      () => 1732280000000 + int(1e9),
      () => pick(['2026-11-22T12:00:00Z', '2026-11-22', 'now']),
      () => 2 ** 53 + pick([-1, 0, 1]),
    ])();
  const value = (depth: number): unknown => {
    const r = rand();
    if (depth > 3 || r < 0.5) return leaf();
    if (r < 0.65) return Array.from({ length: int(3) }, () => value(depth + 1));
    return Object.fromEntries(
      Array.from({ length: int(4) }, () => [
        pick(['ts', 'seq', 'metrics', 'attributes', 'body', 'severity', 't', 'env', 'fw', '', 'a.b']),
        value(depth + 1),
      ]),
    );
  };
  for (let i = 0; i < 2500; i++) {
    const v = rand() < 0.2 ? Array.from({ length: int(4) }, () => value(1)) : value(1);
    const kind = pick(['telemetry', 'events'] as const);
    const label = `random structure ${JSON.stringify(v)?.slice(0, 300)}`;
    const fromJson = attempt(jsonOf(v), `${label} (json)`, kind);
    const fromCbor = attempt(cborOf(v), `${label} (cbor)`, kind);
    if ((fromJson === null) !== (fromCbor === null))
      fail(label, `JSON gave ${fromJson ?? 'readings'}, CBOR ${fromCbor ?? 'readings'}`);
    if (fromJson === null) {
      const a = kind === 'telemetry' ? decodeTelemetry(jsonOf(v), opts) : decodeEvents(jsonOf(v), opts);
      const b = kind === 'telemetry' ? decodeTelemetry(cborOf(v), opts) : decodeEvents(cborOf(v), opts);
      assert.deepEqual(a, b, `FUZZ_SEED=${SEED}, ${label}: JSON and CBOR decode differently`);
    }
  }
});

test(`enough inputs were fed (FUZZ_SEED=${SEED})`, () => {
  assert.ok(counts.inputs >= 10_000, `fed ${counts.inputs} inputs`);
  assert.ok(counts.rejected >= 10_000, `rejected ${counts.rejected} of ${counts.inputs}`);
});
