import { PayloadError, PayloadErrorCodes as C } from '../errors.js';
import { parseTs } from './timestamp.js';
import type { PayloadLimits, Reading } from './types.js';

/**
 * A decoded JSON or CBOR value → readings (DESIGN.md "Device → agent"). Both shapes:
 *   flat      { "ts"?, "seq"?, "temperature": 21.5, "door_open": false, "env": { "hum": 40 }, "fw": "1.4.2" }
 *   explicit  { "ts"?, "seq"?, "metrics": { "temperature": 21.5 }, "attributes"?: { "fw": "1.4.2" } }
 * Flat: numbers and booleans (0/1) are metrics, nested objects flatten with '.', strings are attributes, null is
 * skipped (a sensor that could not read), an `attributes` object holds attributes. Explicit (chosen by a `metrics`
 * key): `metrics` may nest and flattens the same way; attribute values may be strings, numbers or booleans (kept as
 * their string form); any other key is refused. Each reading is checked whole; the first problem rejects the message.
 */

export const MAX_NAME_LENGTH = 255;
export const MAX_ATTRIBUTE_LENGTH = 4096;
const CONTROL = /[\u0000-\u001f\u007f]/;

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Uint8Array) return 'a byte string';
  if (v instanceof Date) return 'a date';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return String(v);
}

export const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Date);

export function checkName(where: string, name: string): void {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH || CONTROL.test(name)) {
    throw new PayloadError(C.BAD_NAME, `${where}: name ${describe(name)} must be 1–${MAX_NAME_LENGTH} characters without control characters`);
  }
}

/** The messages's items: one object, or a non-empty list of objects within the limit. */
export function items(root: unknown, what: 'reading' | 'event', limits: PayloadLimits): Record<string, unknown>[] {
  if (isPlainObject(root)) return [root];
  if (!Array.isArray(root)) throw new PayloadError(C.BAD_SHAPE, `message is ${describe(root)}; expected a ${what} object or a list of them`);
  if (root.length === 0) throw new PayloadError(C.BAD_SHAPE, `message is an empty list; it carries no ${what}s`);
  if (root.length > limits.maxReadings) throw new PayloadError(C.TOO_MANY_READINGS, `message carries ${root.length} ${what}s; the limit is ${limits.maxReadings}`);
  for (let i = 0; i < root.length; i++) {
    if (!isPlainObject(root[i])) throw new PayloadError(C.BAD_SHAPE, `${what} ${i} is ${describe(root[i])}; expected an object`);
  }
  return root as Record<string, unknown>[];
}

class ReadingBuilder {
  names: string[] = [];
  values: number[] = [];
  attributes: string[] | null = null;

  constructor(private readonly where: string, private readonly limits: PayloadLimits) {}

  metric(name: string, v: number): void {
    if (!Number.isFinite(v)) throw new PayloadError(C.BAD_VALUE, `${this.where}: metric '${name}' is ${v}; expected a finite number`);
    checkName(this.where, name);
    if (this.names.length >= this.limits.maxMetrics) throw new PayloadError(C.TOO_MANY_METRICS, `${this.where}: more than ${this.limits.maxMetrics} metrics in one reading`);
    this.names.push(name);
    this.values.push(v);
  }

  attribute(name: string, v: string): void {
    checkName(this.where, name);
    if (v.length > MAX_ATTRIBUTE_LENGTH) throw new PayloadError(C.BAD_ATTRIBUTE, `${this.where}: attribute '${name}' is ${v.length} characters; the limit is ${MAX_ATTRIBUTE_LENGTH}`);
    (this.attributes ??= []).push(name, v);
  }

  /** Flat form: numbers/booleans → metrics, strings → attributes, objects → deeper, null → skipped. */
  flat(obj: Record<string, unknown>, prefix: string, depth: number, stringsAreAttributes: boolean): void {
    if (depth > this.limits.maxDepth) throw new PayloadError(C.TOO_DEEP, `${this.where}: '${prefix.slice(0, -1)}' nests deeper than ${this.limits.maxDepth} levels`);
    for (const key of Object.keys(obj)) {
      const v = obj[key];
      const name = prefix + key;
      switch (typeof v) {
        case 'number':
          this.metric(name, v);
          break;
        case 'boolean':
          this.metric(name, v ? 1 : 0);
          break;
        case 'string':
          if (!stringsAreAttributes) throw new PayloadError(C.BAD_VALUE, `${this.where}: metric '${name}' is ${describe(v)}; expected a number or boolean`);
          this.attribute(name, v);
          break;
        case 'object':
          if (v === null) break;
          if (isPlainObject(v)) {
            this.flat(v, `${name}.`, depth + 1, stringsAreAttributes);
            break;
          }
          throw new PayloadError(stringsAreAttributes ? C.BAD_SHAPE : C.BAD_VALUE, `${this.where}: '${name}' is ${describe(v)}; expected a number, boolean${stringsAreAttributes ? ', string' : ''} or object`);
        default:
          throw new PayloadError(C.BAD_VALUE, `${this.where}: '${name}' is ${describe(v)}; expected a number or boolean`);
      }
    }
  }

  explicitAttributes(attrs: unknown): void {
    if (attrs === undefined || attrs === null) return;
    if (!isPlainObject(attrs)) throw new PayloadError(C.BAD_ATTRIBUTE, `${this.where}: 'attributes' is ${describe(attrs)}; expected an object of strings`);
    for (const key of Object.keys(attrs)) {
      const v = attrs[key];
      if (typeof v === 'string') this.attribute(key, v);
      else if (typeof v === 'number' && Number.isFinite(v)) this.attribute(key, String(v));
      else if (typeof v === 'boolean') this.attribute(key, String(v));
      else if (v !== null) throw new PayloadError(C.BAD_ATTRIBUTE, `${this.where}: attribute '${key}' is ${describe(v)}; expected a string, number or boolean`);
    }
  }
}

function seqOf(v: unknown, where: string): number {
  if (v === undefined) return -1;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  throw new PayloadError(C.BAD_SEQ, `${where}: 'seq' is ${describe(v)}; expected an unsigned integer below 2^53`);
}

const EXPLICIT_KEYS = new Set(['ts', 'seq', 'metrics', 'attributes']);

export function toReadings(root: unknown, arrivalMs: number, limits: PayloadLimits): Reading[] {
  const list = items(root, 'reading', limits);
  const out: Reading[] = new Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const obj = list[i];
    const where = `reading ${i}`;
    const ts = parseTs(obj.ts, where, arrivalMs);
    const seq = seqOf(obj.seq, where);
    const b = new ReadingBuilder(where, limits);
    if ('metrics' in obj) {
      for (const key of Object.keys(obj)) {
        if (!EXPLICIT_KEYS.has(key)) throw new PayloadError(C.BAD_SHAPE, `${where}: unexpected key '${key}' beside 'metrics'; the explicit form takes ts, seq, metrics and attributes`);
      }
      if (!isPlainObject(obj.metrics)) throw new PayloadError(C.BAD_SHAPE, `${where}: 'metrics' is ${describe(obj.metrics)}; expected an object of numbers`);
      b.flat(obj.metrics, '', 1, false);
      b.explicitAttributes(obj.attributes);
    } else {
      for (const key of Object.keys(obj)) {
        if (key === 'ts' || key === 'seq') continue;
        const v = obj[key];
        if (key === 'attributes' && isPlainObject(v)) {
          b.explicitAttributes(v);
          continue;
        }
        b.flat({ [key]: v }, '', 1, true);
      }
    }
    if (b.names.length === 0 && seq < 0) throw new PayloadError(C.NO_METRICS, `${where} carries no metric (and no seq); expected at least one number or boolean`);
    out[i] = { ts, seq, names: b.names, values: b.values, attributes: b.attributes };
  }
  return out;
}
