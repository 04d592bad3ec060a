/**
 * Epoch ms → RFC 3339, as every answer and stream message writes times. Rounded to the millisecond: a time decoded
 * from nanoseconds carries float error (…433.99999 for …434), which truncating would turn into the wrong ms.
 */
export const iso = (ms: number | null | undefined): string | null =>
  ms === null || ms === undefined || !Number.isFinite(ms) ? null : new Date(Math.round(ms)).toISOString();
