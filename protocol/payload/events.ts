import { PayloadError, PayloadErrorCodes as C } from '../errors.js';
import { parseTs } from './timestamp.js';
import { checkName, describe, isPlainObject, items, MAX_ATTRIBUTE_LENGTH } from './readings.js';
import type { AnyValue, DeviceEvent, PayloadLimits } from './types.js';

/**
 * A decoded value → events: `{ "ts"?, "severity"?: "trace|debug|info|warn|error|fatal", "body": string|object|…,
 * "attributes"?: { k: string|number|boolean } }`, one object or a list. Severity numbers are the OTLP spec's
 * (TRACE 1, DEBUG 5, INFO 9, WARN 13, ERROR 17, FATAL 21).
 */

export const SEVERITY: Readonly<Record<string, number>> = Object.freeze({ trace: 1, debug: 5, info: 9, warn: 13, error: 17, fatal: 21 });
const EVENT_KEYS = new Set(['ts', 'severity', 'body', 'attributes']);

function anyValue(v: unknown, where: string, path: string, depth: number, limits: PayloadLimits): AnyValue {
  if (depth > limits.maxDepth) throw new PayloadError(C.TOO_DEEP, `${where}: 'body${path}' nests deeper than ${limits.maxDepth} levels`);
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v;
    case 'number':
      if (!Number.isFinite(v)) throw new PayloadError(C.BAD_EVENT, `${where}: 'body${path}' is ${v}; expected a finite number`);
      return v;
  }
  if (v === null) return null;
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map((x, i) => anyValue(x, where, `${path}[${i}]`, depth + 1, limits));
  if (isPlainObject(v)) {
    const out: { [k: string]: AnyValue } = {};
    for (const k of Object.keys(v)) out[k] = anyValue(v[k], where, `${path}.${k}`, depth + 1, limits);
    return out;
  }
  throw new PayloadError(C.BAD_EVENT, `${where}: 'body${path}' is ${describe(v)}; expected text, a number, a boolean, a list or an object`);
}

export function toEvents(root: unknown, arrivalMs: number, limits: PayloadLimits): DeviceEvent[] {
  const list = items(root, 'event', limits);
  return list.map((obj, i) => {
    const where = `event ${i}`;
    for (const key of Object.keys(obj)) {
      if (!EVENT_KEYS.has(key)) throw new PayloadError(C.BAD_EVENT, `${where}: unexpected key '${key}'; an event takes ts, severity, body and attributes`);
    }
    if (obj.body === undefined || obj.body === null) throw new PayloadError(C.BAD_EVENT, `${where}: 'body' is required (text or an object)`);
    let severityNumber = 0;
    let severityText = '';
    if (obj.severity !== undefined) {
      const s = typeof obj.severity === 'string' ? obj.severity.toLowerCase() : '';
      if (!(s in SEVERITY)) throw new PayloadError(C.BAD_EVENT, `${where}: 'severity' is ${describe(obj.severity)}; expected one of trace, debug, info, warn, error, fatal`);
      severityNumber = SEVERITY[s];
      severityText = obj.severity as string;
    }
    let attributes: AnyValue[] | null = null;
    if (obj.attributes !== undefined && obj.attributes !== null) {
      if (!isPlainObject(obj.attributes)) throw new PayloadError(C.BAD_EVENT, `${where}: 'attributes' is ${describe(obj.attributes)}; expected an object`);
      attributes = [];
      for (const k of Object.keys(obj.attributes)) {
        const v = obj.attributes[k];
        checkName(where, k);
        if (typeof v === 'string' && v.length > MAX_ATTRIBUTE_LENGTH) throw new PayloadError(C.BAD_ATTRIBUTE, `${where}: attribute '${k}' is ${v.length} characters; the limit is ${MAX_ATTRIBUTE_LENGTH}`);
        if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) attributes.push(k, v);
        else if (v !== null) throw new PayloadError(C.BAD_EVENT, `${where}: attribute '${k}' is ${describe(v)}; expected a string, number or boolean`);
      }
    }
    return { ts: parseTs(obj.ts, where, arrivalMs), severityNumber, severityText, body: anyValue(obj.body, where, '', 1, limits), attributes };
  });
}
