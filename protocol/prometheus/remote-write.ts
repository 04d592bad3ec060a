import { ProtoWriter, Wire } from '../otlp/writer.js';
import { ATTR_DEVICE_ID, ATTR_SERVICE_NAME } from '../otlp/semconv.js';
import type { AnyValueJson, KeyValueJson, OtlpMetricsRequestJson } from '../otlp/json-types.js';
import { metricName, sanitizeLabelName, type PromKind } from './naming.js';

/**
 * OTLP metrics → a Prometheus remote-write `WriteRequest` (remote write 1.0: prompb.WriteRequest { repeated
 * TimeSeries timeseries = 1 }, TimeSeries { repeated Label labels = 1; repeated Sample samples = 2 }, Label { name = 1;
 * value = 2 }, Sample { double value = 1; int64 timestamp = 2 } in ms), after the OpenTelemetry specification's
 * compatibility rules:
 *
 * - gauge → gauge; monotonic cumulative sum → counter `_total`; non-monotonic sum → gauge; cumulative histogram →
 *   `_bucket{le}` (cumulative, `+Inf` last), `_sum`, `_count`; summary → `{quantile}`, `_sum`, `_count`. Delta sums
 *   and histograms and exponential histograms have no remote-write 1.0 form: they are skipped and counted.
 * - point attributes → labels; `device.id` → `device_id` on every series of its resource; `job` from
 *   service.namespace/service.name, `instance` from service.instance.id; every other resource attribute goes on one
 *   `target_info` series per resource (and onto each series for the keys in `resourceLabels`).
 * - a point flagged "no recorded value" is written as Prometheus' staleness marker.
 */
export interface RemoteWriteOptions {
  /** Resource attribute keys copied onto every series of the resource as labels (sanitized). */
  resourceLabels: readonly string[];
  /** Write a `target_info` series per resource with its other attributes. */
  targetInfo: boolean;
}

/** Prometheus' staleness marker (a NaN with this bit pattern). */
const STALE_NAN = new Float64Array(new BigUint64Array([0x7ff0000000000002n]).buffer)[0];
const FLAG_NO_RECORDED_VALUE = 1;
const CUMULATIVE = 2;

/** Labels (sorted by name, `__name__` included) and samples; one per distinct label set in a request. */
interface Series {
  labels: [string, string][];
  t: number[];
  v: number[];
}

/** A WriteRequest being built: samples added to the series of their labels, encoded once at the end. */
export class WriteRequestBuilder {
  private readonly series = new Map<string, Series>();
  samples = 0;
  /** Points that have no remote-write form (delta temporality, exponential histograms), by reason. */
  readonly skipped = new Map<string, number>();

  constructor(private readonly opts: RemoteWriteOptions) {}

  get seriesCount(): number {
    return this.series.size;
  }

  /** Adds a sample to the series of `labels` (name → value, `__name__` among them). */
  add(labels: Record<string, string>, timeMs: number, value: number): void {
    const names = Object.keys(labels).sort();
    let key = '';
    for (const n of names) key += `${n}\u0000${labels[n]}\u0001`;
    let s = this.series.get(key);
    if (s === undefined) this.series.set(key, (s = { labels: names.map((n) => [n, labels[n]]), t: [], v: [] }));
    s.t.push(timeMs);
    s.v.push(value);
    this.samples++;
  }

  private skip(reason: string, n: number): void {
    this.skipped.set(reason, (this.skipped.get(reason) ?? 0) + n);
  }

  /** Every metric of a decoded ExportMetricsServiceRequest. */
  addMetrics(req: OtlpMetricsRequestJson): void {
    for (const rm of req.resourceMetrics) {
      const attrs = rm.resource?.attributes ?? [];
      const base = this.resourceLabels(attrs);
      const rest = attrs.filter((a) => !RESOURCE_IDENTITY.has(a.key) && !this.opts.resourceLabels.includes(a.key));
      let latest = 0;
      for (const sm of rm.scopeMetrics) {
        for (const m of sm.metrics) {
          const unit = m.unit ?? '';
          const point = (kind: PromKind, suffix: string, p: { attributes: KeyValueJson[]; timeUnixNano?: string }) => {
            const labels: Record<string, string> = { ...base };
            for (const a of p.attributes) labels[sanitizeLabelName(a.key)] = labelValue(a.value);
            labels.__name__ = metricName(m.name, unit, kind) + suffix;
            const t = timeMs(p.timeUnixNano);
            if (t > latest) latest = t;
            return { labels, t };
          };
          const stale = (flags: number | undefined, v: number) =>
            (flags ?? 0) & FLAG_NO_RECORDED_VALUE ? STALE_NAN : v;
          if (m.gauge || m.sum) {
            const counter = m.sum !== undefined && m.sum.isMonotonic === true;
            if (m.sum && m.sum.aggregationTemporality !== CUMULATIVE && counter) {
              this.skip('delta_sum', m.sum.dataPoints.length);
              continue;
            }
            for (const p of (m.gauge ?? m.sum)!.dataPoints) {
              const { labels, t } = point(counter ? 'counter' : 'gauge', '', p);
              const v = p.asDouble ?? (p.asInt !== undefined ? Number(p.asInt) : 0);
              this.add(labels, t, stale(p.flags, v));
            }
          } else if (m.histogram) {
            if (m.histogram.aggregationTemporality !== CUMULATIVE) {
              this.skip('delta_histogram', m.histogram.dataPoints.length);
              continue;
            }
            for (const p of m.histogram.dataPoints) {
              const { labels, t } = point('histogram', '', p);
              const name = labels.__name__;
              let cumulative = 0;
              p.bucketCounts.forEach((c, i) => {
                cumulative += Number(c);
                const le = i < p.explicitBounds.length ? formatLe(p.explicitBounds[i]) : '+Inf';
                this.add({ ...labels, __name__: `${name}_bucket`, le }, t, stale(p.flags, cumulative));
              });
              if (p.bucketCounts.length === 0)
                this.add(
                  { ...labels, __name__: `${name}_bucket`, le: '+Inf' },
                  t,
                  stale(p.flags, Number(p.count ?? 0)),
                );
              if (p.sum !== undefined) this.add({ ...labels, __name__: `${name}_sum` }, t, stale(p.flags, p.sum));
              this.add({ ...labels, __name__: `${name}_count` }, t, stale(p.flags, Number(p.count ?? 0)));
            }
          } else if (m.summary) {
            for (const p of m.summary.dataPoints) {
              const { labels, t } = point('summary', '', p);
              const name = labels.__name__;
              for (const q of p.quantileValues)
                this.add({ ...labels, quantile: formatLe(q.quantile ?? 0) }, t, stale(p.flags, q.value ?? 0));
              this.add({ ...labels, __name__: `${name}_sum` }, t, stale(p.flags, p.sum ?? 0));
              this.add({ ...labels, __name__: `${name}_count` }, t, stale(p.flags, Number(p.count ?? 0)));
            }
          } else if (m.exponentialHistogram) {
            this.skip('exponential_histogram', m.exponentialHistogram.dataPoints.length);
          }
        }
      }
      if (this.opts.targetInfo && rest.length > 0 && latest > 0) {
        const labels: Record<string, string> = { ...base, __name__: 'target_info' };
        for (const a of rest) labels[sanitizeLabelName(a.key)] = labelValue(a.value);
        this.add(labels, latest, 1);
      }
    }
  }

  /** The labels every series of a resource carries: job, instance, device_id and the configured resource labels. */
  private resourceLabels(attrs: KeyValueJson[]): Record<string, string> {
    const get = (k: string) => attrs.find((a) => a.key === k);
    const out: Record<string, string> = {};
    const service = get(ATTR_SERVICE_NAME);
    const namespace = get('service.namespace');
    if (service)
      out.job = namespace ? `${labelValue(namespace.value)}/${labelValue(service.value)}` : labelValue(service.value);
    const instance = get('service.instance.id');
    if (instance) out.instance = labelValue(instance.value);
    const device = get(ATTR_DEVICE_ID);
    if (device) out.device_id = labelValue(device.value);
    for (const k of this.opts.resourceLabels) {
      const a = get(k);
      if (a) out[sanitizeLabelName(k)] = labelValue(a.value);
    }
    return out;
  }

  /** The WriteRequest bytes (before snappy); samples of each series in time order. */
  encode(): Uint8Array {
    const w = new ProtoWriter(Math.max(1024, this.samples * 24 + this.series.size * 64));
    for (const s of this.series.values()) {
      w.fork(1);
      for (const [name, value] of s.labels) {
        w.fork(1);
        w.stringField(1, name);
        w.stringField(2, value);
        w.join();
      }
      const order = s.t.map((_, i) => i);
      if (!isSorted(s.t)) order.sort((a, b) => s.t[a] - s.t[b]);
      for (const i of order) {
        w.fork(2);
        w.tag(1, Wire.FIXED64);
        w.double(s.v[i]);
        w.tag(2, Wire.VARINT);
        w.int64(s.t[i]);
        w.join();
      }
      w.join();
    }
    return w.finish();
  }
}

/** Resource attributes that become job/instance/device_id rather than target_info labels. */
const RESOURCE_IDENTITY = new Set([ATTR_SERVICE_NAME, 'service.namespace', 'service.instance.id', ATTR_DEVICE_ID]);

function isSorted(t: number[]): boolean {
  for (let i = 1; i < t.length; i++) if (t[i] < t[i - 1]) return false;
  return true;
}

function timeMs(nanos: string | undefined): number {
  if (nanos === undefined || nanos === '0') return 0;
  return Number(BigInt(nanos) / 1_000_000n);
}

/** A bucket bound or quantile as Prometheus writes it (`0.5`, `1`, `+Inf`). */
function formatLe(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** An attribute value as label text: strings as they are, other values as their JSON. */
export function labelValue(v: AnyValueJson | undefined): string {
  if (v === undefined) return '';
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return v.intValue;
  if (v.doubleValue !== undefined) return String(v.doubleValue);
  if (v.boolValue !== undefined) return String(v.boolValue);
  if (v.bytesValue !== undefined) return v.bytesValue;
  if (v.arrayValue) return JSON.stringify(v.arrayValue.values.map(labelValue));
  if (v.kvlistValue)
    return JSON.stringify(Object.fromEntries(v.kvlistValue.values.map((kv) => [kv.key, labelValue(kv.value)])));
  return '';
}
