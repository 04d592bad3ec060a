import { PayloadError, PayloadErrorCodes } from '../errors.js';

/**
 * Reading and event timestamps: epoch milliseconds, an RFC 3339 string, or a Date (CBOR tags 0 and 1), to epoch
 * milliseconds in a double. Fractions of RFC 3339 seconds are kept (up to nanosecond digits; the OTLP encoder keeps
 * microseconds, which a double near today resolves exactly).
 *
 * Bounds: at least 1e11 ms (1973-03-03) — a smaller number is nearly always seconds sent where milliseconds were
 * meant — and below 9,223,372,036,854 ms, where int64 nanoseconds end (2262-04-11).
 */

export const MIN_TS_MS = 1e11;
export const MAX_TS_MS = 9_223_372_036_854;

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function bad(where: string, v: unknown, why: string): PayloadError {
  const shown = typeof v === 'string' ? JSON.stringify(v.length > 64 ? `${v.slice(0, 64)}…` : v) : String(v);
  return new PayloadError(PayloadErrorCodes.BAD_TS, `${where}: 'ts' is ${shown}; ${why}`);
}

function inRange(ms: number, where: string, shown: unknown): number {
  if (ms < MIN_TS_MS) throw bad(where, shown, `that is before 1973; expected epoch milliseconds (was it sent in seconds?)`);
  if (ms >= MAX_TS_MS) throw bad(where, shown, 'that is after 2262, beyond OTLP nanosecond time; expected epoch milliseconds');
  return ms;
}

/** RFC 3339 text → epoch ms, or null when it is not RFC 3339 (callers name the field). */
export function parseRfc3339(s: string): number | null {
  const m = RFC3339.exec(s);
  if (m === null) return null;
  const year = +m[1];
  const month = +m[2];
  const day = +m[3];
  const hour = +m[4];
  const minute = +m[5];
  let second = +m[6];
  if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 60) return null;
  const leap = month === 2 && (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0));
  if (day < 1 || day > DAYS[month - 1] + (leap ? 1 : 0)) return null;
  if (second === 60) second = 59; // a leap second is kept in the minute it ends
  let ms = Date.UTC(year, month - 1, day, hour, minute, second);
  if (m[7] !== undefined) ms += Number(`0.${m[7]}`) * 1000;
  if (m[8] === undefined) {
    const oh = +m[10];
    const om = +m[11];
    if (oh > 23 || om > 59) return null;
    const offset = (oh * 60 + om) * 60_000;
    ms += m[9] === '+' ? -offset : offset;
  }
  return ms;
}

/** `ts` of reading or event `where` → epoch ms; missing (undefined) → `arrivalMs`. Throws BAD_TS. */
export function parseTs(v: unknown, where: string, arrivalMs: number): number {
  if (v === undefined) return arrivalMs;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw bad(where, v, 'expected a finite number of epoch milliseconds');
    return inRange(v, where, v);
  }
  if (typeof v === 'string') {
    const ms = parseRfc3339(v);
    if (ms === null) throw bad(where, v, 'expected epoch milliseconds or an RFC 3339 string such as "2026-11-22T12:00:00Z"');
    return inRange(ms, where, v);
  }
  if (v instanceof Date) {
    const ms = v.getTime();
    if (!Number.isFinite(ms)) throw bad(where, 'an invalid date', 'expected a valid time');
    return inRange(ms, where, v.toISOString());
  }
  throw bad(where, v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : typeof v, 'expected epoch milliseconds or an RFC 3339 string');
}
