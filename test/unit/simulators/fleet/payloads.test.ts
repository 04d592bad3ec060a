import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Decoder } from 'cbor-x';
import {
  CborWriter,
  eventPayload,
  telemetryBuilder,
  type PayloadFormat,
  type ReadingValues,
} from '../../../../simulators/fleet/payloads.js';
import { decodeEvents, decodeTelemetry } from '../../../../protocol/payload/decode.js';

const V: ReadingValues[] = [
  { temperature: 21.47, humidity: 45, battery: 3.297, pulses: 81234, door_open: false },
  { temperature: -3.5, humidity: 100, battery: 3.3, pulses: 0, door_open: true },
];
const TS = 1_732_280_000_123;
// Integers above 2^32 are CBOR uint64, which cbor-x returns as BigInt unless told otherwise, as the agent's decoder
// tells it (int64AsNumber is read by cbor-x but missing from its typings).
const cbor = new Decoder({ mapsAsObjects: true, useRecords: false, int64AsNumber: true } as ConstructorParameters<
  typeof Decoder
>[0]);
const decodeCbor = (b: Buffer): unknown => cbor.decode(b);

/** What JSON.stringify of the documented shape gives: the reference the template must match. */
function reference(f: PayloadFormat, n: number): unknown {
  const readings = Array.from({ length: n }, (_, i) => {
    const ts = f.tsFormat === 'ms' ? TS + i : new Date(TS + i).toISOString();
    const v = V[i % V.length];
    return f.shape === 'flat'
      ? { ts, seq: 7 + i, ...v, fw: '1.4.2' }
      : { ts, seq: 7 + i, metrics: { ...v }, attributes: { fw: '1.4.2' } };
  });
  return n === 1 ? readings[0] : readings;
}

function build(f: PayloadFormat, n: number): string | Buffer {
  const b = telemetryBuilder(f);
  b.begin(n);
  for (let i = 0; i < n; i++) b.reading(TS + i, 7 + i, V[i % V.length]);
  return b.end();
}

const FORMATS: PayloadFormat[] = [];
for (const encoding of ['json', 'cbor'] as const)
  for (const shape of ['flat', 'explicit'] as const)
    for (const tsFormat of ['ms', 'rfc3339'] as const) FORMATS.push({ encoding, shape, tsFormat });

test('every encoding, shape and timestamp format carries exactly the documented reading', () => {
  for (const f of FORMATS) {
    for (const n of [1, 3]) {
      const payload = build(f, n);
      const what = `${f.encoding}/${f.shape}/${f.tsFormat} x${n}`;
      if (f.encoding === 'json') {
        assert.equal(typeof payload, 'string', what);
        assert.equal(payload, JSON.stringify(reference(f, n)), what);
      } else {
        assert.ok(Buffer.isBuffer(payload), what);
        assert.deepEqual(decodeCbor(payload as Buffer), reference(f, n), what);
      }
    }
  }
});

test("the agent's payload decoder accepts every form the fleet sends", () => {
  for (const f of FORMATS) {
    const payload = build(f, 2);
    const readings = decodeTelemetry(typeof payload === 'string' ? Buffer.from(payload) : payload, {
      arrivalMs: Date.now(),
    });
    assert.equal(readings.length, 2);
    assert.deepEqual(
      readings.map((r) => r.seq),
      [7, 8],
    );
    assert.deepEqual(
      readings.map((r) => r.ts),
      [TS, TS + 1],
    );
    assert.deepEqual(readings[1].names, ['temperature', 'humidity', 'battery', 'pulses', 'door_open']);
    assert.deepEqual(readings[1].values, [-3.5, 100, 3.3, 0, 1]);
    assert.deepEqual(readings[0].attributes, ['fw', '1.4.2']);
    const event = eventPayload(f, TS, { code: 'DOOR_OPEN', severity: 'warn' }, 8);
    const [e] = decodeEvents(typeof event === 'string' ? Buffer.from(event) : event, { arrivalMs: Date.now() });
    assert.equal(e.ts, TS);
    assert.equal(e.severityText, 'warn');
    assert.deepEqual(e.body, { code: 'DOOR_OPEN', seq: 8 });
  }
});

test('payloads are fresh each message: a later message does not change an earlier one still held for its PUBACK', () => {
  const b = telemetryBuilder({ encoding: 'cbor', shape: 'flat', tsFormat: 'ms' });
  b.begin(1);
  b.reading(TS, 1, V[0]);
  const first = b.end() as Buffer;
  const copy = Buffer.from(first);
  b.begin(1);
  b.reading(TS + 1, 2, V[1]);
  b.end();
  assert.deepEqual(first, copy);
});

test('the CBOR writer uses the shortest integer head and round-trips through cbor-x', () => {
  const values: unknown[] = [
    0,
    23,
    24,
    255,
    256,
    65535,
    65536,
    2 ** 32 - 1,
    2 ** 32,
    TS,
    Number.MAX_SAFE_INTEGER,
    -1,
    -25,
    -(2 ** 40),
    0.5,
    1e300,
    -2.25,
    true,
    false,
    null,
    '',
    'ä€𝄞',
    'x'.repeat(300),
    [1, [2, 'a']],
    { a: { b: [true] } },
  ];
  for (const v of values) {
    const w = new CborWriter(4); // starts small: every write must grow it safely
    w.value(v);
    const bytes = w.take();
    assert.deepEqual(decodeCbor(bytes), v, JSON.stringify(v));
  }
  const w = new CborWriter(16);
  for (const [n, len] of [
    [23, 1],
    [24, 2],
    [256, 3],
    [65536, 5],
    [2 ** 32, 9],
  ] as const) {
    w.number(n);
    assert.equal(w.take().length, len, String(n));
  }
});
