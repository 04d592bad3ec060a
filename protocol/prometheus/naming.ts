/**
 * OTLP → Prometheus names, after the OpenTelemetry specification's "Prometheus and OpenMetrics Compatibility" rules
 * (as the Collector's prometheus translator applies them): metric names sanitized and suffixed with their unit and,
 * for monotonic sums, `_total`; label names sanitized; a resource's service.* attributes become `job` and `instance`.
 */

/** UCUM units as Prometheus writes them in a metric name. */
const UNITS: Record<string, string> = {
  d: 'days',
  h: 'hours',
  min: 'minutes',
  s: 'seconds',
  ms: 'milliseconds',
  us: 'microseconds',
  ns: 'nanoseconds',
  By: 'bytes',
  KiBy: 'kibibytes',
  MiBy: 'mebibytes',
  GiBy: 'gibibytes',
  TiBy: 'tibibytes',
  KBy: 'kilobytes',
  MBy: 'megabytes',
  GBy: 'gigabytes',
  TBy: 'terabytes',
  m: 'meters',
  V: 'volts',
  A: 'amperes',
  J: 'joules',
  W: 'watts',
  g: 'grams',
  Cel: 'celsius',
  Hz: 'hertz',
  '%': 'percent',
};

/** The denominator of a `x/y` unit. */
const PER_UNITS: Record<string, string> = {
  s: 'second',
  m: 'minute',
  h: 'hour',
  d: 'day',
  w: 'week',
  mo: 'month',
  y: 'year',
};

export type PromKind = 'gauge' | 'counter' | 'histogram' | 'summary';

/** Characters outside [a-zA-Z0-9_:] become `_`, runs of `_` one, and a leading digit gets a `_` before it. */
export function sanitizeMetricName(name: string): string {
  let s = name.replace(/[^a-zA-Z0-9_:]/g, '_').replace(/__+/g, '_');
  if (/^[0-9]/.test(s)) s = `_${s}`;
  return s === '' ? '_' : s;
}

/** Characters outside [a-zA-Z0-9_] become `_`; a leading digit is prefixed `key_`, a leading `__` (reserved) `key`. */
export function sanitizeLabelName(name: string): string {
  let s = name.replace(/[^a-zA-Z0-9_]/g, '_');
  if (/^[0-9]/.test(s)) s = `key_${s}`;
  else if (s.startsWith('__')) s = `key${s}`;
  return s === '' ? 'key_' : s;
}

/** The unit part of a metric name ('' for none): `ms` → `milliseconds`, `By/s` → `bytes_per_second`. */
export function unitSuffix(unit: string, kind: PromKind): string {
  const u = unit.replace(/\{[^}]*\}/g, '').trim();
  if (u === '') return '';
  if (u === '1') return kind === 'gauge' ? 'ratio' : '';
  const slash = u.indexOf('/');
  const main = slash < 0 ? u : u.slice(0, slash);
  const per = slash < 0 ? '' : u.slice(slash + 1);
  const parts: string[] = [];
  if (main !== '') parts.push(UNITS[main] ?? main);
  if (per !== '') parts.push(`per_${PER_UNITS[per] ?? UNITS[per] ?? per}`);
  return sanitizeMetricName(parts.join('_')).replace(/^_+|_+$/g, '');
}

/** The Prometheus metric name of an OTLP metric (before `_bucket`/`_sum`/`_count` of histograms and summaries). */
export function metricName(name: string, unit: string, kind: PromKind): string {
  let s = sanitizeMetricName(name);
  const suffix = unitSuffix(unit, kind);
  if (suffix !== '' && !s.endsWith(`_${suffix}`) && !s.includes(`_${suffix}_`)) s = `${s}_${suffix}`;
  if (kind === 'counter' && !s.endsWith('_total')) s = `${s}_total`;
  return s;
}
