import { PayloadError, PayloadErrorCodes as C } from '../errors.js';
import { parseTs } from './timestamp.js';
import {
  attributeValueError,
  describe,
  isGoodAttributeValue,
  isGoodKey,
  isPlainObject,
  isWellFormed,
  keyError,
  nestsTooDeep,
  quote,
  rootItems,
  tooDeep,
  unpairedSurrogate,
} from './shape.js';
import type { AnyValue, DeviceEvent, PayloadLimits } from './types.js';

/**
 * A decoded value → events (they become OTLP LogRecords): one object or a list of
 *   { "ts"?, "severity"?: "trace|debug|info|warn|error|fatal", "body": string|object|list|number|bool,
 *     "attributes"?: { k: string|number|boolean } }
 * Severity is matched without regard to case and kept as sent in severityText; its number is the OTLP spec's
 * SeverityNumber (TRACE 1, DEBUG 5, INFO 9, WARN 13, ERROR 17, FATAL 21; 0 when absent). A structured body keeps
 * its structure (AnyValue): it is checked in place (finite numbers, valid Unicode, nesting, keys) rather than
 * copied; a CBOR date inside it becomes its RFC 3339 text.
 */

export const SEVERITY_NUMBERS: Readonly<Record<string, number>> = Object.freeze({
  trace: 1,
  debug: 5,
  info: 9,
  warn: 13,
  error: 17,
  fatal: 21,
});
const SEVERITY_LIST = 'trace, debug, info, warn, error, fatal';

function severityNumber(s: string): number {
  switch (s.toLowerCase()) {
    case 'trace':
      return 1;
    case 'debug':
      return 5;
    case 'info':
      return 9;
    case 'warn':
      return 13;
    case 'error':
      return 17;
    case 'fatal':
      return 21;
    default:
      return 0;
  }
}

/** Keys from the event's body down to the value being checked, for messages (`body.readings[2]`). */
const path: (string | number)[] = [];

function pathText(): string {
  let s = 'body';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : `.${p}`;
  return quote(s);
}

/** Checks a body value at nesting `level` and returns it (a Date replaced by its text). */
function bodyValue(v: unknown, level: number, index: number, limits: PayloadLimits): AnyValue {
  switch (typeof v) {
    case 'string':
      if (!isWellFormed(v)) throw unpairedSurrogate(`'body' text at ${pathText()}`, `event ${index}`);
      return v;
    case 'boolean':
      return v;
    case 'number':
      if (v - v !== 0)
        throw new PayloadError(C.BAD_EVENT, `event ${index}: ${pathText()} is ${v}; expected a finite number`);
      return v;
    case 'object':
      if (v === null) return null;
      if (Array.isArray(v)) {
        if (level > limits.maxDepth) throw tooDeep(`event ${index}`, pathText().slice(1, -1), limits.maxDepth);
        for (let i = 0; i < v.length; i++) {
          path.push(i);
          const x = v[i];
          const y = bodyValue(x, level + 1, index, limits);
          if (y !== x) v[i] = y;
          path.pop();
        }
        return v as AnyValue[];
      }
      if (isPlainObject(v)) {
        if (level > limits.maxDepth) throw tooDeep(`event ${index}`, pathText().slice(1, -1), limits.maxDepth);
        for (const k in v) {
          if (!isGoodKey(k)) throw keyError(k, '', `event ${index}: in ${pathText()}`);
          path.push(k);
          const x = v[k];
          const y = bodyValue(x, level + 1, index, limits);
          if (y !== x) v[k] = y;
          path.pop();
        }
        return v as { [key: string]: AnyValue };
      }
      if (v instanceof Date && !Number.isNaN(v.getTime())) return v.toISOString();
  }
  throw new PayloadError(
    C.BAD_EVENT,
    `event ${index}: ${pathText()} is ${describe(v)}; expected text, a number, a boolean, null, a list or an object`,
  );
}

function eventAttributes(attrs: unknown, index: number, limits: PayloadLimits): AnyValue[] | null {
  if (attrs === null) return null;
  if (!isPlainObject(attrs)) {
    if (nestsTooDeep(attrs, 2, limits.maxDepth)) throw tooDeep(`event ${index}`, 'attributes', limits.maxDepth);
    throw new PayloadError(C.BAD_ATTRIBUTE, `event ${index}: 'attributes' is ${describe(attrs)}; expected an object`);
  }
  let out: AnyValue[] | null = null;
  for (const k in attrs) {
    if (!isGoodKey(k)) throw keyError(k, '', `event ${index}`);
    const v = attrs[k];
    switch (typeof v) {
      case 'string':
        if (!isGoodAttributeValue(v)) throw attributeValueError(k, v, `event ${index}`);
        (out ??= []).push(k, v);
        continue;
      case 'boolean':
        (out ??= []).push(k, v);
        continue;
      case 'number':
        if (v - v === 0) {
          (out ??= []).push(k, v);
          continue;
        }
        break;
      case 'object':
        if (v === null) continue;
        if (nestsTooDeep(v, 3, limits.maxDepth)) throw tooDeep(`event ${index}`, `attributes.${k}`, limits.maxDepth);
    }
    throw new PayloadError(
      C.BAD_ATTRIBUTE,
      `event ${index}: attribute ${quote(k)} is ${describe(v)}; expected a string, a finite number or a boolean`,
    );
  }
  return out;
}

function toEvent(obj: Record<string, unknown>, index: number, arrivalMs: number, limits: PayloadLimits): DeviceEvent {
  let ts = arrivalMs;
  let severityNumberValue = 0;
  let severityText = '';
  let body: unknown;
  let attributes: AnyValue[] | null = null;
  for (const key in obj) {
    const v = obj[key];
    switch (key) {
      case 'ts':
        ts = parseTs(v, arrivalMs, 'event', index);
        break;
      case 'severity':
        severityNumberValue = typeof v === 'string' ? severityNumber(v) : 0;
        if (severityNumberValue === 0) {
          throw new PayloadError(
            C.BAD_EVENT,
            `event ${index}: 'severity' is ${describe(v)}; expected one of ${SEVERITY_LIST} (in any case)`,
          );
        }
        severityText = v as string;
        break;
      case 'body':
        body = v;
        break;
      case 'attributes':
        attributes = eventAttributes(v, index, limits);
        break;
      default:
        throw new PayloadError(
          C.BAD_EVENT,
          `event ${index}: unexpected key ${quote(key)}; an event takes only ts, severity, body and attributes`,
        );
    }
  }
  if (body === undefined || body === null) {
    throw new PayloadError(
      C.BAD_EVENT,
      `event ${index}: 'body' is ${body === null ? 'null' : 'missing'}; expected text or an object`,
    );
  }
  path.length = 0;
  try {
    body = bodyValue(body, 2, index, limits);
  } finally {
    path.length = 0;
  }
  return { ts, severityNumber: severityNumberValue, severityText, body: body as AnyValue, attributes };
}

export function toEvents(root: unknown, arrivalMs: number, limits: PayloadLimits): DeviceEvent[] {
  const list = rootItems(root, 'event', limits);
  if (list === null) return [toEvent(root as Record<string, unknown>, 0, arrivalMs, limits)];
  const out = new Array<DeviceEvent>(list.length);
  for (let i = 0; i < list.length; i++) out[i] = toEvent(list[i], i, arrivalMs, limits);
  return out;
}
