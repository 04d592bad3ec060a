import { isUtf8 } from 'node:buffer';
import { PayloadError, PayloadErrorCodes as C } from '../errors.js';
import { parseRfc3339 } from './timestamp.js';

/**
 * A strict structural pass over a CBOR payload (RFC 8949) before cbor-x decodes it. It reads item headers and text
 * bytes only — no values are built — and refuses what cbor-x would accept too kindly or too expensively:
 * - not well-formed: truncation, reserved header values (28–30), a misplaced "break", trailing bytes (a message is
 *   exactly one item);
 * - nesting deeper than the limit (cbor-x recurses, so a hostile payload could exhaust the stack). Levels are counted
 *   as in shape.ts: a top-level map is level 1, a top-level array 0;
 * - lengths larger than the bytes that remain (a header claiming 2^32 items fails here, before any allocation);
 * - text strings that are not UTF-8 (cbor-x replaces bad bytes with U+FFFD silently), in keys and values;
 * - map keys that are not text strings, and the key `__proto__` (cbor-x renames it);
 * - `undefined` and every simple value but false, true and null; indefinite-length strings (cbor-x cannot read
 *   them);
 * - tags other than 0 (RFC 3339 text, which must parse as such — cbor-x hands it to `new Date`, which takes
 *   anything), 1 (epoch seconds, a number) and 55799 (the self-described CBOR prefix, at the start only). cbor-x
 *   writes plain data without tags, so nothing else is needed; bignums, typed arrays, records and sets are refused.
 *
 * The walk keeps its cursor in module state rather than in closures or tuples: it runs once per message on the
 * agent's hot path, synchronously, and allocates nothing for a valid payload (bar a view of each text string longer
 * than 64 bytes, which Node's validator checks).
 */

const EMPTY = new Uint8Array(0);
let src: Uint8Array = EMPTY;
let pos = 0;
let end = 0;
let maxLevel = 16;

/** Root marker for `item`: the level of a top-level container depends on whether it is a map or an array. */
const ROOT = -1;
const TAG_SELF_DESCRIBED = 55799;

export function checkCbor(buf: Uint8Array, maxDepth: number): void {
  src = buf;
  pos = 0;
  end = buf.length;
  maxLevel = maxDepth;
  try {
    item(ROOT, false);
    if (pos !== end)
      badCbor(pos, `${end - pos} more bytes follow the first item; a message holds exactly one CBOR item`);
  } finally {
    src = EMPTY; // do not keep the last payload alive
  }
}

function badCbor(at: number, why: string): never {
  throw new PayloadError(C.BAD_CBOR, `CBOR at byte ${at}: ${why}`);
}

function truncated(at: number): never {
  return badCbor(at, 'the payload ends in the middle of an item (truncated)');
}

/** Reads the argument of the header whose additional information is `ai` (24–27); -1 for 31 (indefinite). */
function argument(ai: number, at: number): number {
  switch (ai) {
    case 24:
      if (pos + 1 > end) truncated(at);
      return src[pos++];
    case 25:
      if (pos + 2 > end) truncated(at);
      pos += 2;
      return (src[pos - 2] << 8) | src[pos - 1];
    case 26:
      if (pos + 4 > end) truncated(at);
      pos += 4;
      return src[pos - 4] * 0x1000000 + ((src[pos - 3] << 16) | (src[pos - 2] << 8) | src[pos - 1]);
    case 27: {
      if (pos + 8 > end) truncated(at);
      // Exact below 2^53; above, only compared with byte counts and tag numbers, which it then exceeds anyway.
      let v = 0;
      for (let i = 0; i < 8; i++) v = v * 256 + src[pos++];
      return v;
    }
    case 31:
      return -1;
    default:
      return badCbor(at, `reserved header value ${ai} (not well-formed CBOR)`);
  }
}

function item(parent: number, isKey: boolean): void {
  if (pos >= end) truncated(pos);
  const at = pos;
  const ib = src[pos++];
  const major = ib >> 5;
  const ai = ib & 31;
  if (isKey && major !== 3) badCbor(at, 'map keys must be text strings');
  const arg = ai < 24 ? ai : argument(ai, at);
  switch (major) {
    case 0:
    case 1:
      if (arg < 0) badCbor(at, 'an integer cannot have indefinite length (not well-formed CBOR)');
      return;
    case 2:
      if (arg < 0) badCbor(at, 'indefinite-length byte strings are not accepted; send the string with its length');
      if (arg > end - pos)
        badCbor(at, `a byte string claims ${arg} bytes but only ${end - pos} remain (truncated or corrupt)`);
      pos += arg;
      return;
    case 3:
      if (arg < 0) badCbor(at, 'indefinite-length text strings are not accepted; send the string with its length');
      if (arg > end - pos)
        badCbor(at, `a text string claims ${arg} bytes but only ${end - pos} remain (truncated or corrupt)`);
      if (!utf8(pos, pos + arg))
        throw new PayloadError(
          C.BAD_UTF8,
          `CBOR at byte ${at}: a text string${isKey ? ' used as a map key' : ''} is not valid UTF-8`,
        );
      if (isKey && arg === 9 && isProto(pos))
        throw new PayloadError(C.BAD_NAME, `CBOR at byte ${at}: the map key '__proto__' is not accepted`);
      pos += arg;
      return;
    case 4:
    case 5:
      return container(major, arg, at, parent < 0 ? (major === 4 ? 0 : 1) : parent + 1);
    case 6:
      return tag(arg, at, parent);
    default: // 7: floats and simple values
      switch (ai) {
        case 20: // false
        case 21: // true
        case 22: // null
        case 25: // half, single and double floats: NaN and ±Infinity are refused later, as values
        case 26:
        case 27:
          return;
        case 23:
          return badCbor(at, '"undefined" is not accepted; leave the field out or send null');
        case 31:
          return badCbor(at, 'a "break" (0xff) outside an indefinite-length map or array');
        default:
          return badCbor(at, `simple value ${arg} is not accepted; only false, true and null`);
      }
  }
}

function container(major: number, arg: number, at: number, level: number): void {
  if (level > maxLevel)
    throw new PayloadError(C.TOO_DEEP, `CBOR at byte ${at}: maps and arrays nest deeper than ${maxLevel} levels`);
  const isMap = major === 5;
  if (arg >= 0) {
    // Every entry takes at least one byte (two for a map): a length beyond that is corrupt, whatever follows.
    if (arg > (end - pos) / (isMap ? 2 : 1)) {
      badCbor(
        at,
        `${isMap ? 'a map' : 'an array'} claims ${arg} entries but only ${end - pos} bytes remain (truncated or corrupt)`,
      );
    }
    for (let i = 0; i < arg; i++) {
      if (isMap) item(level, true);
      item(level, false);
    }
    return;
  }
  for (;;) {
    if (pos >= end)
      badCbor(at, `an indefinite-length ${isMap ? 'map' : 'array'} is not terminated by a "break" (truncated)`);
    if (src[pos] === 0xff) {
      pos++;
      return;
    }
    if (isMap) item(level, true);
    item(level, false);
  }
}

function tag(number: number, at: number, parent: number): void {
  if (pos >= end) truncated(pos);
  const next = src[pos];
  const major = next >> 5;
  switch (number) {
    case 0: {
      if (major !== 3 || (next & 31) === 31) badCbor(at, 'tag 0 (date/time) must hold an RFC 3339 text string');
      const ai = next & 31;
      const textStart = pos + (ai < 24 ? 1 : ai === 24 ? 2 : ai === 25 ? 3 : ai === 26 ? 5 : 9);
      item(parent, false); // length and UTF-8 checks
      const text = ascii(textStart, pos);
      if (Number.isNaN(parseRfc3339(text))) {
        throw new PayloadError(
          C.BAD_TS,
          `CBOR at byte ${at}: tag 0 (date/time) holds ${JSON.stringify(text.slice(0, 40))}; expected an RFC 3339 date-time such as "2026-11-22T12:00:00Z"`,
        );
      }
      return;
    }
    case 1:
      if (!(major === 0 || major === 1 || next === 0xf9 || next === 0xfa || next === 0xfb))
        badCbor(at, 'tag 1 (epoch time) must hold a number of seconds');
      return item(parent, false);
    case TAG_SELF_DESCRIBED:
      if (at !== 0) badCbor(at, 'tag 55799 (self-described CBOR) may only open the payload');
      if (major === 6) badCbor(pos, 'tag 55799 must hold the message itself, not another tag');
      return item(parent, false);
    default:
      return badCbor(
        at,
        `tag ${number} is not accepted; only 0 (RFC 3339 time), 1 (epoch time) and 55799 (self-described CBOR)`,
      );
  }
}

/** The bytes [from, to) as a string, one character per byte (the caller has checked UTF-8; RFC 3339 is ASCII). */
function ascii(from: number, to: number): string {
  if (to - from > 40) to = from + 40;
  let s = '';
  for (let i = from; i < to; i++) s += String.fromCharCode(src[i]);
  return s;
}

const PROTO = [0x5f, 0x5f, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x5f, 0x5f]; // "__proto__"

function isProto(at: number): boolean {
  for (let i = 0; i < 9; i++) if (src[at + i] !== PROTO[i]) return false;
  return true;
}

/**
 * Whether src[from, to) is UTF-8. Short strings — nearly every key and value a device sends — are checked here
 * without allocating; long ones by Node's validator.
 */
function utf8(from: number, to: number): boolean {
  if (to - from > 64) return isUtf8(src.subarray(from, to));
  return utf8ErrorAt(src, from, to) < 0;
}

/**
 * The offset of the first byte in buf[from, to) that does not start a valid UTF-8 sequence (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or -1 when all of it is valid.
 */
export function utf8ErrorAt(buf: Uint8Array, from: number, to: number): number {
  let i = from;
  while (i < to) {
    const b = buf[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    if (b < 0xc2 || b > 0xf4) return i;
    const need = b < 0xe0 ? 1 : b < 0xf0 ? 2 : 3;
    if (i + need >= to) return i; // the sequence runs past the end
    const b1 = buf[i + 1];
    if ((b1 & 0xc0) !== 0x80) return i;
    if (need >= 2) {
      if (b === 0xe0 && b1 < 0xa0) return i; // overlong
      if (b === 0xed && b1 >= 0xa0) return i; // UTF-16 surrogate
      if (b === 0xf0 && b1 < 0x90) return i; // overlong
      if (b === 0xf4 && b1 >= 0x90) return i; // above U+10FFFF
      if ((buf[i + 2] & 0xc0) !== 0x80) return i;
      if (need === 3 && (buf[i + 3] & 0xc0) !== 0x80) return i;
    }
    i += need + 1;
  }
  return -1;
}
