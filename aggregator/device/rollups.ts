import type { RollupPoint } from './types.js';

/**
 * One-minute rollup buckets as six float64s — [min, max, sum, count, last, lastTs] — in a Float64Array at some
 * offset, so a device keeps its buckets in one array with no object per bucket. `last` is the value of the point with
 * the newest ts (not the last to arrive), kept with that ts so buckets merge in any order: replays, out-of-order
 * batches and state moved between nodes all give the same answer.
 */
export const MINUTE_MS = 60_000;
/** Highest minute a rollup key can carry (12 hex digits). */
export const MAX_MINUTE = 2 ** 48 - 1;
export const BUCKET_FIELDS = 6;
/** A bucket stored as a LevelDB value: the six fields, float64 little-endian. */
export const BUCKET_BYTES = BUCKET_FIELDS * 8;

export const minuteOf = (ts: number): number => Math.floor(ts / MINUTE_MS);

export function newBucket(): Float64Array {
  const b = new Float64Array(BUCKET_FIELDS);
  clearBucket(b, 0);
  return b;
}

/** An empty bucket: merging anything into it gives that thing. */
export function clearBucket(b: Float64Array, at: number): void {
  b[at] = Infinity;
  b[at + 1] = -Infinity;
  b[at + 2] = 0;
  b[at + 3] = 0;
  b[at + 4] = NaN;
  b[at + 5] = -Infinity;
}

/** Adds one point; on a ts tie the later arrival becomes `last`. */
export function addPoint(b: Float64Array, value: number, ts: number, at = 0): void {
  if (value < b[at]) b[at] = value;
  if (value > b[at + 1]) b[at + 1] = value;
  b[at + 2] += value;
  b[at + 3]++;
  if (ts >= b[at + 5]) {
    b[at + 4] = value;
    b[at + 5] = ts;
  }
}

/** Merges bucket `from` into `into`; on a `last` ts tie `into` keeps its own. */
export function mergeBucket(into: Float64Array, from: Float64Array, intoAt = 0, fromAt = 0): void {
  if (from[fromAt + 3] === 0) return;
  if (from[fromAt] < into[intoAt]) into[intoAt] = from[fromAt];
  if (from[fromAt + 1] > into[intoAt + 1]) into[intoAt + 1] = from[fromAt + 1];
  into[intoAt + 2] += from[fromAt + 2];
  into[intoAt + 3] += from[fromAt + 3];
  if (from[fromAt + 5] > into[intoAt + 5]) {
    into[intoAt + 4] = from[fromAt + 4];
    into[intoAt + 5] = from[fromAt + 5];
  }
}

export function copyBucket(from: Float64Array, fromAt: number): Float64Array {
  const b = new Float64Array(BUCKET_FIELDS);
  for (let i = 0; i < BUCKET_FIELDS; i++) b[i] = from[fromAt + i];
  return b;
}

export function writeBucket(view: DataView, at: number, b: Float64Array, bAt = 0): number {
  for (let i = 0; i < BUCKET_FIELDS; i++, at += 8) view.setFloat64(at, b[bAt + i], true);
  return at;
}

export function readBucket(
  view: DataView,
  at: number,
  into: Float64Array = new Float64Array(BUCKET_FIELDS),
  intoAt = 0,
): Float64Array {
  for (let i = 0; i < BUCKET_FIELDS; i++, at += 8) into[intoAt + i] = view.getFloat64(at, true);
  return into;
}

export function rollupPoint(minute: number, b: Float64Array, at = 0): RollupPoint {
  return { start: minute * MINUTE_MS, min: b[at], max: b[at + 1], sum: b[at + 2], count: b[at + 3], last: b[at + 4] };
}

/**
 * LevelDB key of a bucket: `r:<device>\0<metric>\0<minute as 12 hex>`. Device ids and metric names never hold
 * \0 (the store refuses them), so one device's keys, and one metric's, are each a contiguous range.
 */
export const rollupKey = (device: string, metric: string, minute: number, prefix = 'r:'): string =>
  `${prefix}${device}\u0000${metric}\u0000${minute.toString(16).padStart(12, '0')}`;

/**
 * First key of a device's buckets (or of one metric's), and the key just past them; `prefix` `r:` for 1-minute
 * buckets, tierPrefix() for a coarser tier's.
 */
export function rollupRange(device: string, metric?: string, prefix = 'r:'): { gte: string; lt: string } {
  const p = metric === undefined ? `${prefix}${device}` : `${prefix}${device}\u0000${metric}`;
  return { gte: `${p}\u0000`, lt: `${p}\u0001` };
}

/**
 * Key prefix of the buckets of a coarser tier: `u:<resolution in minutes, 8 hex>:`; such a bucket's key ends in the
 * first minute of its period, like a 1-minute bucket's. Minutes (resolution 1) use `r:`.
 */
export const tierPrefix = (resolutionMin: number): string =>
  resolutionMin === 1 ? 'r:' : `u:${resolutionMin.toString(16).padStart(8, '0')}:`;

export const minuteOfKey = (key: string): number => parseInt(key.slice(key.length - 12), 16);

/** Device and metric of a bucket key. */
export function parseRollupKey(key: string): { device: string; metric: string; minute: number } {
  const start = key.startsWith('u:') ? 11 : 2;
  const a = key.indexOf('\u0000', start);
  return { device: key.slice(start, a), metric: key.slice(a + 1, key.length - 13), minute: minuteOfKey(key) };
}
