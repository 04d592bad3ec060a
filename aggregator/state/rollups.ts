/**
 * One-minute rollup buckets: [min, max, sum, count, last, lastTs] in a Float64Array, `last` being the value of the
 * newest point (by its ts, not by arrival), so replays and out-of-order batches give the same answer.
 */
export const BUCKET_MS = 60_000;
export const BUCKET_FIELDS = 6;

export const bucketStart = (ts: number): number => Math.floor(ts / BUCKET_MS) * BUCKET_MS;

export function newBucket(): Float64Array {
  const b = new Float64Array(BUCKET_FIELDS);
  b[0] = Infinity;
  b[1] = -Infinity;
  b[5] = -Infinity;
  return b;
}

export function addPoint(b: Float64Array, value: number, ts: number): void {
  if (value < b[0]) b[0] = value;
  if (value > b[1]) b[1] = value;
  b[2] += value;
  b[3]++;
  if (ts >= b[5]) {
    b[4] = value;
    b[5] = ts;
  }
}

/** Merges bucket `from` into `into` (used when state moves between nodes). */
export function mergeBucket(into: Float64Array, from: Float64Array): void {
  if (from[3] === 0) return;
  into[0] = Math.min(into[0], from[0]);
  into[1] = Math.max(into[1], from[1]);
  into[2] += from[2];
  into[3] += from[3];
  if (from[5] >= into[5]) {
    into[4] = from[4];
    into[5] = from[5];
  }
}
