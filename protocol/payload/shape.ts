import { PayloadError, PayloadErrorCodes as C } from '../errors.js';
import type { PayloadLimits } from './types.js';

/**
 * What readings and events share: the top-level shape of a message, key and text checks, depth, and how a value is
 * shown in a message to a firmware engineer.
 *
 * Depth is counted the same way for JSON and CBOR (cbor-check.ts): a reading or event object is level 1, each object
 * or array inside it one more; a top-level array that lists readings is level 0, so a reading nests the same whether
 * it is sent alone or in a batch.
 */

export const MAX_NAME_LENGTH = 255;
export const MAX_ATTRIBUTE_LENGTH = 4096;

/** A value as a message shows it: strings quoted and cut at 40 characters, containers by kind. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Uint8Array) return 'a byte string';
  if (v instanceof Date) return 'a date';
  switch (typeof v) {
    case 'object':
      return 'an object';
    case 'string':
      return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
    case 'bigint':
      return `${v}`;
    default:
      return String(v);
  }
}

/** A name inside a message: quoted the way JSON would (so control characters show), cut at 60 characters. */
export function quote(name: string): string {
  const s = JSON.stringify(name.length > 60 ? `${name.slice(0, 60)}…` : name);
  return `'${s.slice(1, -1)}'`;
}

/** A JSON/CBOR object (not an array, byte string or date: those have other prototypes). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

// String.prototype.isWellFormed (Node 20; not in the ES2022 lib typings).
export const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/**
 * Whether `key` may name a metric or attribute (one level of it): non-empty, no control characters (U+0000–U+001F,
 * U+007F), no unpaired UTF-16 surrogate (a JSON `\ud800` escape: it cannot be written as UTF-8 in OTLP, and a
 * downstream protobuf decoder would refuse the whole batch), and not `__proto__` (cbor-x silently renames it, so it is
 * refused in both encodings alike).
 *
 * Devices send the same few keys over and over, so keys that passed are remembered: a Set lookup (JSON.parse
 * interns keys, their hashes are cached) measured about half the cost of the character loop, which was a third of
 * the walk. The set is bounded: when full it starts over, so a device inventing keys cannot grow it.
 */
export function isGoodKey(key: string): boolean {
  if (goodKeys.has(key)) return true;
  if (!checkKeyChars(key)) return false;
  if (key.length <= MAX_NAME_LENGTH) {
    // a longer one fails as a name anyway; never kept
    if (goodKeys.size >= GOOD_KEYS_MAX) goodKeys.clear();
    goodKeys.add(key);
  }
  return true;
}

/**
 * The metric name rule, one for both ends: a (flattened) name of 1–255 characters that passes isGoodKey. The agent
 * refuses a reading that breaks it; the aggregator refuses a batch that carries one (only a hostile or broken
 * sender can), so a name always fits the 16-bit length fields of stored records.
 */
export function isValidName(name: string): boolean {
  return typeof name === 'string' && name.length <= MAX_NAME_LENGTH && isGoodKey(name);
}

const GOOD_KEYS_MAX = 4096;
const goodKeys = new Set<string>();

function checkKeyChars(key: string): boolean {
  const n = key.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return false;
    if (c >= 0xd800 && c <= 0xdfff) return isWellFormed(key) && key !== '__proto__';
  }
  return n !== 9 || key !== '__proto__';
}

/** Why `key` (inside `path`, '' at the top) failed isGoodKey, as the error to throw. */
export function keyError(key: string, path: string, where: string): PayloadError {
  if (key.length === 0) {
    return new PayloadError(
      C.BAD_NAME,
      `${where}: ${path === '' ? 'a key' : `a key inside ${quote(path.slice(0, -1))}`} is empty; names must be 1–${MAX_NAME_LENGTH} characters`,
    );
  }
  const name = quote(path + key);
  if (key === '__proto__') return new PayloadError(C.BAD_NAME, `${where}: the name ${name} is not accepted`);
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) {
      return new PayloadError(
        C.BAD_NAME,
        `${where}: name ${name} contains the control character U+${c.toString(16).padStart(4, '0').toUpperCase()}; names must be printable`,
      );
    }
  }
  return new PayloadError(
    C.BAD_UTF8,
    `${where}: name ${name} holds an unpaired UTF-16 surrogate (a lone \\uD800–\\uDFFF escape); text must be valid Unicode`,
  );
}

export function nameTooLong(name: string, where: string): PayloadError {
  return new PayloadError(
    C.BAD_NAME,
    `${where}: name ${quote(name)} is ${name.length} characters; the limit is ${MAX_NAME_LENGTH}`,
  );
}

/** An attribute value: at most MAX_ATTRIBUTE_LENGTH characters of valid Unicode. */
export function isGoodAttributeValue(s: string): boolean {
  return s.length <= MAX_ATTRIBUTE_LENGTH && isWellFormed(s);
}

/** Why attribute `name`'s value `s` failed isGoodAttributeValue, as the error to throw. */
export function attributeValueError(name: string, s: string, where: string): PayloadError {
  if (s.length > MAX_ATTRIBUTE_LENGTH) {
    return new PayloadError(
      C.BAD_ATTRIBUTE,
      `${where}: attribute ${quote(name)} is ${s.length} characters; the limit is ${MAX_ATTRIBUTE_LENGTH}`,
    );
  }
  return unpairedSurrogate(`attribute ${quote(name)}`, where);
}

export function unpairedSurrogate(what: string, where: string): PayloadError {
  return new PayloadError(
    C.BAD_UTF8,
    `${where}: ${what} holds an unpaired UTF-16 surrogate (a lone \\uD800–\\uDFFF escape); text must be valid Unicode`,
  );
}

/**
 * Whether `v`, found at nesting `level`, holds a container deeper than `max`. Used before refusing a container for its
 * shape, so that deep nesting is reported as TOO_DEEP in JSON as it is in CBOR. Recursion stops at `max`.
 */
export function nestsTooDeep(v: unknown, level: number, max: number): boolean {
  if (typeof v !== 'object' || v === null) return false;
  if (level > max) return true;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (nestsTooDeep(v[i], level + 1, max)) return true;
  } else if (isPlainObject(v)) {
    for (const k in v) if (nestsTooDeep(v[k], level + 1, max)) return true;
  }
  return false;
}

export function tooDeep(where: string, path: string, max: number): PayloadError {
  return new PayloadError(C.TOO_DEEP, `${where}: ${quote(path)} nests deeper than ${max} levels`);
}

/**
 * The message's items: one object, or a non-empty list of at most `limits.maxReadings` objects. Messages count items
 * from 0, and a single object is item 0 too.
 */
export function rootItems(
  root: unknown,
  what: 'reading' | 'event',
  limits: PayloadLimits,
): Record<string, unknown>[] | null {
  if (isPlainObject(root)) return null; // the caller handles the single item without wrapping it in a list
  if (!Array.isArray(root)) {
    throw new PayloadError(C.BAD_SHAPE, `message is ${describe(root)}; expected a ${what} object or a list of them`);
  }
  const n = root.length;
  if (n === 0) throw new PayloadError(C.BAD_SHAPE, `message is an empty list; it carries no ${what}s`);
  if (n > limits.maxReadings)
    throw new PayloadError(C.TOO_MANY_READINGS, `message carries ${n} ${what}s; the limit is ${limits.maxReadings}`);
  for (let i = 0; i < n; i++) {
    const v = root[i];
    if (!isPlainObject(v)) {
      if (nestsTooDeep(v, 1, limits.maxDepth))
        throw new PayloadError(C.TOO_DEEP, `${what} ${i} nests deeper than ${limits.maxDepth} levels`);
      throw new PayloadError(C.BAD_SHAPE, `${what} ${i} is ${describe(v)}; expected an object`);
    }
  }
  return root as Record<string, unknown>[];
}
