/**
 * An HTTP `Retry-After` value (delay in seconds, or an HTTP date) → ms from now; null when absent or unreadable. One
 * reading for the agent's OTLP/HTTP uplink and the aggregator's exporters.
 */
export function parseRetryAfter(v: string | string[] | null | undefined): number | null {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return null;
  const n = Number(s);
  if (Number.isFinite(n) && n >= 0) return Math.round(n * 1000);
  const t = Date.parse(s);
  return Number.isFinite(t) ? Math.max(0, t - Date.now()) : null;
}
