import { PayloadError, PayloadErrorCodes } from '../errors.js';
import { describe } from './shape.js';

/**
 * Reading and event timestamps → epoch milliseconds in a double: epoch milliseconds as sent, an RFC 3339 string, or a
 * Date (what cbor-x makes of CBOR tags 0 and 1; tag 0 text is checked against RFC 3339 in cbor-check.ts first).
 *
 * RFC 3339 is parsed here rather than by Date.parse, which accepts garbage ("2026-11-22", "Nov 22 2026", years 0–99
 * mapped to 19xx). Accepted: `YYYY-MM-DDTHH:MM:SS[.1–9 digits](Z|±HH:MM)`, with `t`/`z` in lower case or a space for
 * the `T` (RFC 3339 §5.6 note). The fraction is kept: 9 digits land in the double with sub-microsecond resolution
 * for today's dates. A leap second (:60) is kept in the second it extends (:59.xxx), as POSIX time has no :60.
 *
 * Bounds: at least 1e11 ms (1973-03-03) — a smaller number is nearly always seconds sent where milliseconds were
 * meant — and below 9,223,372,036,854 ms (2262-04-11), where int64 nanoseconds (OTLP's time_unix_nano) end.
 */

export const MIN_TS_MS = 1e11;
export const MAX_TS_MS = 9_223_372_036_854;

const MS_PER_DAY = 86_400_000;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  if (m <= 2) y -= 1;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/** `n` ASCII digits of `s` from `at` as a number, or -1 when one of them is not a digit. */
function digits(s: string, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const d = s.charCodeAt(i) - 48; // NaN past the end
    if (!(d >= 0 && d <= 9)) return -1;
    v = v * 10 + d;
  }
  return v;
}

/** RFC 3339 date-time → epoch ms (a fraction is kept), or NaN when `s` is not one (the caller names the field). */
export function parseRfc3339(s: string): number {
  const n = s.length;
  if (n < 20 || n > 35) return NaN;
  const year = digits(s, 0, 4);
  const month = digits(s, 5, 2);
  const day = digits(s, 8, 2);
  const hour = digits(s, 11, 2);
  const minute = digits(s, 14, 2);
  let second = digits(s, 17, 2);
  const sep = s.charCodeAt(10);
  if (
    s.charCodeAt(4) !== 45 ||
    s.charCodeAt(7) !== 45 ||
    (sep !== 84 && sep !== 116 && sep !== 32) ||
    s.charCodeAt(13) !== 58 ||
    s.charCodeAt(16) !== 58
  )
    return NaN;
  if (
    year < 0 ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    hour < 0 ||
    hour > 23 ||
    minute < 0 ||
    minute > 59 ||
    second < 0 ||
    second > 60
  )
    return NaN;
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > DAYS_IN_MONTH[month - 1] + (leap ? 1 : 0)) return NaN;
  if (second === 60) second = 59;

  let i = 19;
  let fraction = 0; // milliseconds
  if (s.charCodeAt(i) === 46) {
    const start = ++i;
    let f = 0;
    while (i < n) {
      const d = s.charCodeAt(i) - 48;
      if (!(d >= 0 && d <= 9)) break;
      f = f * 10 + d;
      i++;
    }
    const count = i - start;
    if (count === 0 || count > 9) return NaN;
    fraction = count <= 3 ? f * 10 ** (3 - count) : f / 10 ** (count - 3); // exact powers of ten: one rounding
  }

  let offsetMs = 0;
  const z = s.charCodeAt(i);
  if (z === 90 || z === 122) {
    i++;
  } else if (z === 43 || z === 45) {
    const oh = digits(s, i + 1, 2);
    const om = digits(s, i + 4, 2);
    if (oh < 0 || oh > 23 || om < 0 || om > 59 || s.charCodeAt(i + 3) !== 58) return NaN;
    offsetMs = (oh * 60 + om) * 60_000 * (z === 43 ? 1 : -1);
    i += 6;
  } else {
    return NaN;
  }
  if (i !== n) return NaN;
  return (
    daysFromCivil(year, month, day) * MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1000 - offsetMs + fraction
  );
}

function bad(where: string, shown: string, why: string): PayloadError {
  return new PayloadError(PayloadErrorCodes.BAD_TS, `${where}: 'ts' is ${shown}; ${why}`);
}

function outOfRange(ms: number, where: string, shown: string): PayloadError {
  if (ms < MIN_TS_MS)
    return bad(where, shown, 'that is before 1973; expected epoch milliseconds (was it sent in seconds?)');
  return bad(where, shown, 'that is after 2262-04-11, beyond OTLP nanosecond time; expected epoch milliseconds');
}

/**
 * `ts` of reading or event `index` → epoch ms; missing (undefined) → `arrivalMs`. Throws BAD_TS naming the item
 * (`reading 3: 'ts' is …`); the name is built only then.
 */
export function parseTs(v: unknown, arrivalMs: number, item: 'reading' | 'event', index: number): number {
  let ms: number;
  if (typeof v === 'number') ms = v;
  else if (v === undefined) return arrivalMs;
  else if (typeof v === 'string') ms = parseRfc3339(v);
  else if (v instanceof Date) ms = v.getTime();
  else ms = NaN;
  if (ms >= MIN_TS_MS && ms < MAX_TS_MS) return ms; // false for NaN
  throw tsError(v, `${item} ${index}`);
}

/** Why `v` is not a usable `ts`, as the error to throw. */
function tsError(v: unknown, where: string): PayloadError {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return bad(where, String(v), 'expected a finite number of epoch milliseconds');
    return outOfRange(v, where, String(v));
  }
  if (typeof v === 'string') {
    const ms = parseRfc3339(v);
    if (Number.isNaN(ms))
      return bad(
        where,
        describe(v),
        'expected epoch milliseconds or an RFC 3339 string such as "2026-11-22T12:00:00Z"',
      );
    return outOfRange(ms, where, describe(v));
  }
  if (v instanceof Date) {
    const ms = v.getTime();
    if (Number.isNaN(ms))
      return bad(where, 'an invalid CBOR date', 'expected epoch milliseconds or an RFC 3339 string');
    return outOfRange(ms, where, `the CBOR date ${v.toISOString()}`);
  }
  return bad(where, describe(v), 'expected epoch milliseconds or an RFC 3339 string');
}
