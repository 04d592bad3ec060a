import type { Reading } from '../../protocol/payload/types.js';

/** A decoded reading as the payload decoder makes it: `metrics` in order, attributes as [key, value, …] or null. */
export function reading(
  ts: number,
  seq: number,
  metrics: Record<string, number>,
  attributes: string[] | null = null,
): Reading {
  return { ts, seq, names: Object.keys(metrics), values: Object.values(metrics), attributes };
}
