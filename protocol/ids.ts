/**
 * The id rule, one for every id the project names — devices, gateways (agents), aggregator nodes: 1–128 characters
 * of [A-Za-z0-9._:-]. Topics carry device ids as one level, ring members are hashed by id, records and keys store
 * them with short length fields, so every place that takes an id from outside checks it here.
 */

export const MAX_ID_LENGTH = 128;
/** The rule as messages state it. */
export const ID_RULE = `1–${MAX_ID_LENGTH} characters of [A-Za-z0-9._:-]`;
/** The characters, as a regular expression class, for patterns that embed an id. */
export const ID_CHARS = '[A-Za-z0-9._:-]';
/** The rule as a pattern (config values, file lines). */
export const ID_PATTERN = new RegExp(`^${ID_CHARS}{1,${MAX_ID_LENGTH}}$`);

/** Allowed id characters, by char code. */
const ID_CHAR = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-') ID_CHAR[c.charCodeAt(0)] = 1;

/** Index of the first character of `s[from, to)` outside [A-Za-z0-9._:-], or -1. */
export function badIdChar(s: string, from: number, to: number): number {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || ID_CHAR[c] === 0) return i;
  }
  return -1;
}

/** True when `id` follows the rule (a plain character loop: this runs for every topic on the agent's hot path). */
export function isValidId(id: string): boolean {
  return typeof id === 'string' && id.length >= 1 && id.length <= MAX_ID_LENGTH && badIdChar(id, 0, id.length) < 0;
}

/** Why `id` breaks the rule, for messages: "it is empty", "it is 129 characters", "' ' at position 3 …". */
export function whyBadId(id: string): string {
  if (id.length === 0) return 'it is empty';
  if (id.length > MAX_ID_LENGTH) return `it is ${id.length} characters`;
  const at = badIdChar(id, 0, id.length);
  return `${JSON.stringify(String.fromCodePoint(id.codePointAt(at) ?? 0))} at position ${at} is not allowed`;
}

/** A valid id made from a host name (invalid characters become '-'), or `fallback` when nothing is left. */
export function idFromHostName(host: string, fallback: string): string {
  const id = host.replace(/[^A-Za-z0-9._:-]/g, '-').slice(0, MAX_ID_LENGTH);
  return isValidId(id) ? id : fallback;
}
