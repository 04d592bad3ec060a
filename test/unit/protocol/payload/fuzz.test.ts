import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encode } from 'cbor-x';
import { decodeEvents, decodeTelemetry } from '../../../../protocol/payload/decode.js';
import { PayloadError, PayloadErrorCodes } from '../../../../protocol/errors.js';
import type { Reading } from '../../../../protocol/payload/types.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261122);
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(SEED);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
const CODES = new Set<string>(Object.values(PayloadErrorCodes));
const opts = { arrivalMs: 1732280000000 };

const counts = { inputs: 0, rejected: 0, accepted: 0 };

/** Decodes one input; returns the error code, or null when it was valid (and then checks the readings are sane). */
function attempt(input: Uint8Array, label: string, events = false): string | null {
  counts.inputs++;
  try {
    const out = events ? decodeEvents(input, opts) : decodeTelemetry(input, opts);
    counts.accepted++;
    if (!events) {
      for (const r of out as Reading[]) {
        assert.ok(Number.isFinite(r.ts), `${label}: ts finite`);
        assert.equal(r.names.length, r.values.length, label);
        for (const v of r.values) assert.ok(Number.isFinite(v), `${label}: value finite`);
        for (const n of r.names) assert.ok(n.length > 0, `${label}: name non-empty`);
      }
    }
    return null;
  } catch (e) {
    if (!(e instanceof PayloadError) || !CODES.has(e.code)) {
      assert.fail(`seed ${SEED}, ${label}: expected a PayloadError, got ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}`);
    }
    counts.rejected++;
    return e.code;
  }
}

const validObjects = [
  { ts: 1732280000123, seq: 42, temperature: 21.5, door_open: false, env: { hum: 40, unit: 'pct' }, fw: '1.4.2' },
  { ts: '2026-11-22T12:00:00.5Z', seq: 7, metrics: { temperature: 21.5, env: { hum: 40 } }, attributes: { fw: '1.4.2' } },
  [{ seq: 1, v: 1 }, { seq: 2, v: 2.25, note: 'ok' }],
];
const valid: Uint8Array[] = validObjects.flatMap((o) => [Buffer.from(JSON.stringify(o)), Buffer.from(encode(o))]);

test(`10,000+ malformed device payloads each end in a typed rejection, never another exception (seed ${SEED})`, () => {
  // 1. every truncation of every valid payload
  for (const v of valid) for (let n = 0; n < v.length; n++) attempt(v.subarray(0, n), `truncated to ${n}`);

  // 2. random byte flips
  for (let i = 0; i < 3000; i++) {
    const v = Buffer.from(pick(valid));
    for (let k = 0; k <= int(4); k++) v[int(v.length)] = int(256);
    attempt(v, `flip ${i}`);
  }

  // 3. wrong types in every field, both encodings, readings and events
  const wrong: unknown[] = [null, true, -1, 1.5, 'x', '', [], [1, [2]], {}, { a: { b: {} } }, 1e308, -0, 2 ** 60, '2026-99-99T00:00:00Z'];
  const eventBase = { ts: 1732280000000, severity: 'warn', body: { code: 'E1' }, attributes: { a: 1 } };
  for (let i = 0; i < 2500; i++) {
    const base = structuredClone(pick(validObjects.slice(0, 2))) as Record<string, unknown>;
    const key = pick(Object.keys(base));
    base[key] = pick(wrong);
    if (rand() < 0.3) base[`extra${i % 7}`] = pick(wrong);
    attempt(rand() < 0.5 ? Buffer.from(JSON.stringify(base)) : Buffer.from(encode(base)), `wrong type in ${key}`);
    const ev = structuredClone(eventBase) as Record<string, unknown>;
    ev[pick(Object.keys(ev))] = pick(wrong);
    attempt(Buffer.from(JSON.stringify(ev)), 'event with a wrong type', true);
  }

  // 4. deep nesting, JSON and CBOR, up to 100,000 levels: always TOO_DEEP (or too large)
  for (const depth of [17, 20, 100, 1000, 10_000, 100_000]) {
    const j = Buffer.from('{"a":'.repeat(depth) + '1' + '}'.repeat(depth));
    assert.match(String(attempt(j, `json depth ${depth}`)), /TOO_DEEP|TOO_LARGE/);
    const arr = Buffer.from('['.repeat(depth) + ']'.repeat(depth));
    assert.match(String(attempt(arr, `json array depth ${depth}`)), /TOO_DEEP|TOO_LARGE|BAD_SHAPE/);
    const c = Buffer.concat([Buffer.alloc(depth, 0x81), Buffer.from([0x01])]);
    assert.match(String(attempt(c, `cbor depth ${depth}`)), /TOO_DEEP|TOO_LARGE|BAD_SHAPE/);
    const m = Buffer.concat([Buffer.alloc(depth * 3).map((_, i) => [0xa1, 0x61, 0x61][i % 3]), Buffer.from([0x01])]);
    assert.match(String(attempt(m, `cbor map depth ${depth}`)), /TOO_DEEP|TOO_LARGE/);
  }

  // 5. huge arrays: headers claiming 2^32 (and 2^64) items, and real ones past the limit
  for (const head of [[0x9a, 0xff, 0xff, 0xff, 0xff], [0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0xba, 0xff, 0xff, 0xff, 0xff], [0x7a, 0xff, 0xff, 0xff, 0xff]]) {
    assert.equal(attempt(Buffer.from([...head, 1, 2, 3]), `claims ${head}`), PayloadErrorCodes.BAD_CBOR);
  }
  assert.equal(attempt(Buffer.from(JSON.stringify(Array.from({ length: 10_001 }, () => ({ v: 1 })))), '10,001 readings'), PayloadErrorCodes.TOO_MANY_READINGS);
  assert.equal(attempt(Buffer.from(encode(Array.from({ length: 10_001 }, () => ({ v: 1 })))), '10,001 CBOR readings'), PayloadErrorCodes.TOO_MANY_READINGS);

  // 6. invalid UTF-8: in JSON text, in CBOR text values and in CBOR map keys — always BAD_UTF8
  const badSeqs = [[0xff], [0xc3, 0x28], [0xe2, 0x28, 0xa1], [0xf0, 0x28, 0x8c, 0x28], [0xed, 0xa0, 0x80], [0xc0, 0xaf]];
  for (let i = 0; i < 600; i++) {
    const bad = pick(badSeqs);
    const json = Buffer.concat([Buffer.from('{"fw":"'), Buffer.from(bad), Buffer.from('","v":1}')]);
    assert.equal(attempt(json, 'json bad utf8'), PayloadErrorCodes.BAD_UTF8);
    const val = Buffer.from([0xa2, 0x61, 0x76, 0x01, 0x62, 0x66, 0x77, 0x60 | bad.length, ...bad]);
    assert.equal(attempt(val, 'cbor value bad utf8'), PayloadErrorCodes.BAD_UTF8);
    const key = Buffer.from([0xa1, 0x60 | bad.length, ...bad, 0x01]);
    assert.equal(attempt(key, 'cbor key bad utf8'), PayloadErrorCodes.BAD_UTF8);
  }

  // 7. NaN and ±Infinity in CBOR, half, single and double precision — always BAD_VALUE
  const specials = [[0xf9, 0x7e, 0x00], [0xf9, 0x7c, 0x00], [0xf9, 0xfc, 0x00], [0xfa, 0x7f, 0xc0, 0, 0], [0xfa, 0x7f, 0x80, 0, 0], [0xfa, 0xff, 0x80, 0, 0], [0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0], [0xfb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0], [0xfb, 0xff, 0xf0, 0, 0, 0, 0, 0, 0]];
  for (let i = 0; i < 300; i++) {
    const s = pick(specials);
    assert.equal(attempt(Buffer.from([0xa1, 0x61, 0x76, ...s]), 'cbor special float'), PayloadErrorCodes.BAD_VALUE);
    assert.equal(attempt(Buffer.from([0xa1, 0x67, ...Buffer.from('metrics'), 0xa1, 0x61, 0x74, ...s]), 'explicit special float'), PayloadErrorCodes.BAD_VALUE);
  }

  // 8. oversize payloads — always TOO_LARGE, whatever they hold
  for (const extra of [1, 100, 1 << 20]) {
    const big = Buffer.alloc(256 * 1024 + extra, 0x7b);
    assert.equal(attempt(big, `oversize +${extra}`), PayloadErrorCodes.TOO_LARGE);
  }

  // 9. random bytes of random lengths
  for (let i = 0; i < 2500; i++) attempt(Uint8Array.from({ length: 1 + int(64) }, () => int(256)), `random ${i}`);

  assert.ok(counts.inputs >= 10_000, `fed ${counts.inputs} inputs`);
  assert.ok(counts.rejected >= 9_000, `rejected ${counts.rejected} of ${counts.inputs}`);
});
