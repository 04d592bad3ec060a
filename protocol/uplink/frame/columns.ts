import { add64, ByteSink, ByteSource, diff64 } from './bytes.js';
import type { Series } from './state.js';

/**
 * The columns a metrics segment is coded into (metrics-columns.ts), and the codings of one value that both ends
 * share: time deltas, decimal detection, the series' time after a point, integer halves.
 */

export interface Columns {
  s: ByteSink;
  t: ByteSink;
  v: ByteSink;
  d: ByteSink;
}

export interface ColumnSources {
  s: ByteSource;
  t: ByteSource;
  v: ByteSource;
  d: ByteSource;
}

/** Point flags (S column, one varint per point). */
export const F = {
  KIND: 3,
  TIME: 1 << 2,
  START: 1 << 3,
  ATTRS: 1 << 4,
  SAME_TIME: 1 << 5,
  RAW: 1 << 6,
  NEW_EXP: 1 << 7,
} as const;

export const MAX_EXP = 15;
export const POW10 = Array.from({ length: MAX_EXP + 1 }, (_, e) => 10 ** e);
/** Deltas and mantissas stay below this, so zigzag codes (and the ×2 of the unit bit) stay exact. */
export const SMALL = 2 ** 50;
export const SAFE_HI = 1 << 21;

export const scratch = new DataView(new ArrayBuffer(8));

/** The exponent e ≤ 15 with v = round(v·10^e) / 10^e exactly (trying `hint` first), or -1. */
export function decimalExponent(v: number, hint: number): number {
  if (hint >= 0 && isDecimal(v, hint)) return hint;
  if (!Number.isFinite(v) || Object.is(v, -0)) return -1;
  for (let e = 0; e <= MAX_EXP; e++) if (e !== hint && isDecimal(v, e)) return e;
  return -1;
}

function isDecimal(v: number, e: number): boolean {
  const m = Math.round(v * POW10[e]);
  return Math.abs(m) < SMALL && m / POW10[e] === v && !Object.is(v, -0);
}

/** Writes a time or start delta into T: 0 = 8 raw bytes follow; else 1 + (zigzag ×2 + 1 when in whole ms). */
export function putDelta(t: ByteSink, d: number, lo: number, hi: number): void {
  if (Math.abs(d) >= SMALL) {
    t.varint(0);
    t.u64(lo, hi);
    return;
  }
  const ms = d % 1e6 === 0;
  const x = ms ? d / 1e6 : d;
  t.varint((x >= 0 ? x * 2 : -x * 2 - 1) * 2 + (ms ? 1 : 0) + 1);
}

/** Reads what putDelta wrote into `out`: the raw value, or base + extra + the delta. */
export function getDelta(t: ByteSource, baseLo: number, baseHi: number, extra: number, out: [number, number]): void {
  const code = t.varint();
  if (code === 0) return t.u64(out);
  const c = code - 1;
  const z = Math.floor(c / 2);
  let x = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  if (c % 2 === 1) x *= 1e6;
  add64(baseLo, baseHi, x + extra, out);
}

/** The series' time after a point at (lo, hi): both ends apply exactly this. */
export function advanceTime(s: Series, lo: number, hi: number): void {
  if (s.hasTime) {
    const d = diff64(lo, hi, s.tLo, s.tHi);
    s.tDelta = Math.abs(d) < SMALL ? d : 0;
  } else s.tDelta = 0;
  s.tLo = lo;
  s.tHi = hi;
  s.hasTime = true;
}

/** A safe integer as two's-complement halves [lo, hi] into `out`. */
export function splitInt(v: number, out: [number, number]): void {
  const neg = v < 0;
  const a = neg ? -v : v;
  let hi = Math.floor(a / 4294967296);
  let lo = a - hi * 4294967296;
  if (neg) {
    lo = (~lo + 1) >>> 0;
    hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
  }
  out[0] = lo >>> 0;
  out[1] = hi >>> 0;
}
