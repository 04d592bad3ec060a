import { resource } from './decode.js';
import type { AnyValueJson, KeyValueJson } from './json-types.js';
import { ProtoReader } from './reader.js';

/**
 * OTLP values as plain JSON for people (the API, the live stream, alert labels): strings, booleans and doubles as
 * they are; integers as numbers while exact, else as decimal strings; arrays as arrays; key-value lists as objects;
 * bytes as base64.
 */
export type PlainValue = string | number | boolean | null | PlainValue[] | { [key: string]: PlainValue };

export function plainValue(v: AnyValueJson): PlainValue {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) {
    const n = Number(v.intValue);
    return Number.isSafeInteger(n) ? n : v.intValue;
  }
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue !== undefined) return v.arrayValue.values.map(plainValue);
  if (v.kvlistValue !== undefined) return plainAttributes(v.kvlistValue.values);
  if (v.bytesValue !== undefined) return v.bytesValue;
  return null;
}

/** Key-value pairs → an object (a key given twice keeps its last value, as OTLP leaves undefined). */
export function plainAttributes(kvs: readonly KeyValueJson[] | undefined): Record<string, PlainValue> {
  const out: Record<string, PlainValue> = {};
  for (const kv of kvs ?? []) out[kv.key] = plainValue(kv.value);
  return out;
}

/** A Resource message's bytes → its attributes as an object. */
export function resourceAttributes(bytes: Uint8Array): Record<string, PlainValue> {
  const r = new ProtoReader(bytes);
  return plainAttributes(resource(r, r.end).attributes);
}
