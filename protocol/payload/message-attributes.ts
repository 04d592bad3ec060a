/**
 * Attributes a message carries beside its payload (MQTT 5 user properties), added to every reading and event in it.
 * The rule, as the agent's README states it: each pair becomes a string attribute; an attribute the payload names
 * itself wins; a key given twice keeps its last value; at most 64 pairs, keys of 1–128 characters, values of at most
 * 4,096 (as any attribute).
 */
import { PayloadError, PayloadErrorCodes } from '../errors.js';
import { isGoodAttributeValue, MAX_ATTRIBUTE_LENGTH } from './shape.js';
import type { DeviceEvent, Reading } from './types.js';

export const MAX_MESSAGE_ATTRIBUTES = 64;
const MAX_KEY_LENGTH = 128;

/** The pairs as attributes, checked; throws a PayloadError naming the pair that breaks a bound. */
export function messageAttributes(pairs: readonly [string, string][]): Map<string, string> {
  if (pairs.length > MAX_MESSAGE_ATTRIBUTES)
    throw new PayloadError(
      PayloadErrorCodes.BAD_ATTRIBUTE,
      `the message carries ${pairs.length} user properties; at most ${MAX_MESSAGE_ATTRIBUTES} are taken as attributes`,
    );
  const out = new Map<string, string>();
  for (const [key, value] of pairs) {
    if (key.length === 0 || key.length > MAX_KEY_LENGTH)
      throw new PayloadError(
        PayloadErrorCodes.BAD_ATTRIBUTE,
        `user property key ${JSON.stringify(key.slice(0, 140))} must have 1 to ${MAX_KEY_LENGTH} characters`,
      );
    if (!isGoodAttributeValue(value))
      throw new PayloadError(
        PayloadErrorCodes.BAD_ATTRIBUTE,
        `user property ${JSON.stringify(key)}: its value must be valid Unicode of at most ${MAX_ATTRIBUTE_LENGTH} characters`,
      );
    out.delete(key); // the last value of a repeated key, in the position of its last appearance
    out.set(key, value);
  }
  return out;
}

/** Adds `attrs` to each reading, under the reading's own attributes. */
export function addToReadings(readings: Reading[], attrs: ReadonlyMap<string, string>): void {
  for (const r of readings) {
    const own = r.attributes;
    const merged: string[] = [];
    for (const [k, v] of attrs) if (own === null || !hasKey(own, k)) merged.push(k, v);
    r.attributes = own === null ? merged : [...merged, ...own];
  }
}

/** Adds `attrs` to each event, under the event's own attributes. */
export function addToEvents(events: DeviceEvent[], attrs: ReadonlyMap<string, string>): void {
  for (const e of events) {
    const own = e.attributes;
    const merged: (string | DeviceEvent['body'])[] = [];
    for (const [k, v] of attrs) if (own === null || !hasKey(own, k)) merged.push(k, v);
    e.attributes = own === null ? merged : [...merged, ...own];
  }
}

function hasKey(flat: readonly unknown[], key: string): boolean {
  for (let i = 0; i < flat.length; i += 2) if (flat[i] === key) return true;
  return false;
}
