import { isUtf8 } from 'node:buffer';
import { PayloadError, PayloadErrorCodes } from '../errors.js';

/**
 * A strict structural pass over a CBOR payload before cbor-x decodes it (RFC 8949). It walks headers only — no
 * values are built — and refuses what cbor-x would accept too kindly or too expensively:
 * - truncation and trailing bytes (exactly one top-level item);
 * - nesting deeper than the limit (cbor-x recurses; a hostile payload could exhaust the stack);
 * - lengths larger than the bytes that remain (a header claiming 2^32 items fails here, before any allocation);
 * - text strings that are not UTF-8 (cbor-x replaces bad bytes with U+FFFD silently), in keys and values;
 * - map keys that are not text strings, and the key `__proto__`;
 * - `undefined`, unassigned simple values, reserved encodings and indefinite-length strings (cbor-x cannot read them);
 * - tags other than 0 (RFC 3339 time), 1 (epoch time) and 55799 (self-described CBOR).
 */

const fail = (code: typeof PayloadErrorCodes.BAD_CBOR | typeof PayloadErrorCodes.BAD_UTF8 | typeof PayloadErrorCodes.TOO_DEEP, msg: string): never => {
  throw new PayloadError(code, msg);
};
const badCbor = (at: number, why: string): never => fail(PayloadErrorCodes.BAD_CBOR, `CBOR at byte ${at}: ${why}`);

const ALLOWED_TAGS = new Set([0, 1, 55799]);
const PROTO = Buffer.from('__proto__');

export function checkCbor(buf: Uint8Array, maxDepth: number): void {
  const end = buf.length;
  let pos = 0;

  /** Reads an item header: [major, argument or -1 for indefinite, ai]. */
  const header = (): [number, number, number] => {
    if (pos >= end) badCbor(pos, 'the payload ends in the middle of an item (truncated)');
    const ib = buf[pos++];
    const major = ib >> 5;
    const ai = ib & 31;
    if (ai < 24) return [major, ai, ai];
    if (ai === 31) return [major, -1, ai];
    if (ai > 27) badCbor(pos - 1, `reserved additional information ${ai}`);
    const n = 1 << (ai - 24);
    if (pos + n > end) badCbor(pos, 'the payload ends inside an item header (truncated)');
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + buf[pos++];
    return [major, v, ai];
  };

  const text = (at: number, len: number, isKey: boolean): void => {
    if (len > end - pos) badCbor(at, `a string claims ${len} bytes but only ${end - pos} remain`);
    const bytes = buf.subarray(pos, pos + len);
    if (!isUtf8(bytes)) fail(PayloadErrorCodes.BAD_UTF8, `CBOR at byte ${at}: a text string is not valid UTF-8`);
    if (isKey && len === 9 && Buffer.compare(bytes, PROTO) === 0) badCbor(at, "the map key '__proto__' is not allowed");
    pos += len;
  };

  const item = (depth: number, isKey: boolean): void => {
    const at = pos;
    const [major, arg, ai] = header();
    if (isKey && major !== 3) badCbor(at, 'map keys must be text strings');
    switch (major) {
      case 0:
      case 1:
        return;
      case 2:
      case 3:
        if (arg >= 0) {
          if (major === 3) text(at, arg, isKey);
          else if (arg > end - pos) badCbor(at, `a byte string claims ${arg} bytes but only ${end - pos} remain`);
          else pos += arg;
          return;
        }
        // cbor-x cannot decode chunked strings; say so rather than fail obscurely later.
        return badCbor(at, 'indefinite-length strings are not accepted; send the string with its length');
      case 4:
      case 5: {
        if (depth >= maxDepth) fail(PayloadErrorCodes.TOO_DEEP, `CBOR at byte ${at}: nesting deeper than ${maxDepth} levels`);
        const perEntry = major === 5 ? 2 : 1;
        if (arg >= 0) {
          if (arg * perEntry > end - pos) badCbor(at, `${major === 5 ? 'a map' : 'an array'} claims ${arg} entries but only ${end - pos} bytes remain (truncated or corrupt)`);
          for (let i = 0; i < arg; i++) {
            if (major === 5) item(depth + 1, true);
            item(depth + 1, false);
          }
          return;
        }
        for (;;) {
          if (pos >= end) badCbor(pos, 'an indefinite-length container is not terminated (truncated)');
          if (buf[pos] === 0xff) {
            pos++;
            return;
          }
          if (major === 5) item(depth + 1, true);
          item(depth + 1, false);
        }
      }
      case 6:
        if (!ALLOWED_TAGS.has(arg)) badCbor(at, `tag ${arg} is not accepted; only 0 (RFC 3339 time), 1 (epoch time) and 55799`);
        if (arg === 0 && pos < end && buf[pos] >> 5 !== 3) badCbor(at, 'tag 0 must hold an RFC 3339 text string');
        if (arg === 1 && pos < end && ![0, 1, 7].includes(buf[pos] >> 5)) badCbor(at, 'tag 1 must hold a number');
        return item(depth, false);
      case 7:
        if (ai === 20 || ai === 21 || ai === 22 || ai === 25 || ai === 26 || ai === 27) return;
        if (ai === 31) badCbor(at, 'unexpected "break"');
        if (ai === 23) badCbor(at, '"undefined" is not accepted; leave the field out or use null');
        return badCbor(at, `simple value ${arg} is not accepted`);
    }
  };

  item(0, false);
  if (pos !== end) badCbor(pos, `${end - pos} bytes follow the first item; a message holds exactly one`);
}
