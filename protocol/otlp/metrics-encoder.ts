import type { DeviceReadings, Reading } from '../payload/types.js';
import { resolveEncoderOptions, type EncoderOptions, type ResolvedEncoderOptions } from './options.js';
import { SEQ_METRIC } from './semconv.js';
import { ResourceTemplate, writeStringKeyValue } from './resource.js';
import { ProtoWriter, Wire } from './writer.js';

/**
 * Encodes the readings of many devices as one OTLP `ExportMetricsServiceRequest` (agent/README.md "OTLP mapping"):
 * one ResourceMetrics per device, one ScopeMetrics, one Metric per metric name holding that device's points in
 * reading order. Numbers are Gauge points (integers as `as_int`, the rest `as_double`); names configured as counters
 * are monotonic cumulative Sums; a reading's `seq` becomes the gauge `otlp_edge.device.seq`.
 *
 * Field numbers (opentelemetry/proto/metrics/v1/metrics.proto):
 *   ExportMetricsServiceRequest.resource_metrics = 1
 *   ResourceMetrics { resource = 1, scope_metrics = 2 }   ScopeMetrics { scope = 1, metrics = 2 }
 *   Metric { name = 1, gauge = 5, sum = 7 }   Gauge { data_points = 1 }
 *   Sum { data_points = 1, aggregation_temporality = 2, is_monotonic = 3 }
 *   NumberDataPoint { time_unix_nano = 3 (fixed64), as_double = 4, as_int = 6 (sfixed64), attributes = 7 }
 *
 * One encoder is reused batch after batch: its writer buffer and grouping tables are kept, so encoding allocates
 * only the returned bytes.
 */
/** Data points a reading becomes in OTLP: one per metric, plus the seq gauge when it carries a seq. */
export function pointsOf(r: Reading): number {
  return r.names.length + (r.seq >= 0 ? 1 : 0);
}

export class MetricsEncoder {
  private readonly opts: ResolvedEncoderOptions;
  private readonly template: ResourceTemplate;
  private readonly w = new ProtoWriter();
  /** Metric name → position in `order` for the device being encoded (cleared per device). */
  private readonly seen = new Map<string, number>();
  private readonly order: string[] = [];
  /**
   * The last attribute list written and its KeyValue bytes: the points of a reading share one list, and so, often, do
   * the readings of a device (a processor's result is one list for all), so a list is encoded once per run of points.
   */
  private lastAttrs: readonly string[] | null = null;
  private lastAttrBytes: Uint8Array = new Uint8Array(0);
  private readonly attrWriter = new ProtoWriter(256);

  constructor(options: EncoderOptions) {
    this.opts = resolveEncoderOptions(options);
    this.template = new ResourceTemplate(this.opts);
  }

  encode(batch: readonly DeviceReadings[]): Uint8Array {
    const w = this.w.reset();
    this.lastAttrs = null; // lists are never changed in place, but none is kept past its batch either
    for (const device of batch) {
      if (device.readings.length === 0) continue;
      w.fork(1); // resource_metrics
      this.template.writeResource(w, device.deviceId);
      w.fork(2); // scope_metrics
      w.raw(this.template.scopeField);
      this.writeMetrics(w, device.readings);
      w.join();
      w.join();
    }
    return w.finish();
  }

  private writeMetrics(w: ProtoWriter, readings: readonly Reading[]): void {
    // Distinct names in order of first appearance. Readings of one device nearly always repeat the same names in the
    // same order, so the lookup below hits `names[j] === name` at the same index and rarely scans.
    const seen = this.seen;
    const order = this.order;
    seen.clear();
    order.length = 0;
    let hasSeq = false;
    for (const r of readings) {
      if (r.seq >= 0) hasSeq = true;
      const names = r.names;
      for (let i = 0; i < names.length; i++) {
        if (!seen.has(names[i])) {
          seen.set(names[i], order.length);
          order.push(names[i]);
        }
      }
    }

    for (let m = 0; m < order.length; m++) {
      const name = order[m];
      const isSum = this.opts.counters.has(name);
      w.fork(2); // metrics
      w.stringField(1, name);
      w.fork(isSum ? 7 : 5);
      let hint = m;
      for (const r of readings) {
        const names = r.names;
        const j = hint < names.length && names[hint] === name ? hint : names.indexOf(name);
        if (j < 0) continue;
        hint = j;
        this.writePoint(w, r, r.values[j]);
      }
      if (isSum) {
        w.tag(2, Wire.VARINT);
        w.varint(2); // AGGREGATION_TEMPORALITY_CUMULATIVE
        w.tag(3, Wire.VARINT);
        w.bool(true);
      }
      w.join();
      w.join();
    }

    if (hasSeq) {
      w.fork(2);
      w.stringField(1, SEQ_METRIC);
      w.fork(5);
      for (const r of readings) if (r.seq >= 0) this.writePoint(w, r, r.seq);
      w.join();
      w.join();
    }
  }

  /** NumberDataPoint under field 1 (data_points). */
  private writePoint(w: ProtoWriter, r: Reading, value: number): void {
    w.fork(1);
    const attrs = r.attributes;
    if (attrs !== null) {
      if (attrs !== this.lastAttrs) {
        const a = this.attrWriter.reset();
        for (let i = 0; i < attrs.length; i += 2) writeStringKeyValue(a, 7, attrs[i], attrs[i + 1]);
        this.lastAttrBytes = a.finish();
        this.lastAttrs = attrs;
      }
      w.raw(this.lastAttrBytes);
    }
    writeTimeAndValue(w, r, value);
    w.join();
  }
}

function writeTimeAndValue(w: ProtoWriter, r: Reading, value: number): void {
  w.tag(3, Wire.FIXED64);
  w.timeFromMs(r.ts);
  if (Number.isSafeInteger(value)) {
    w.tag(6, Wire.FIXED64);
    w.sfixed64(value);
  } else {
    w.tag(4, Wire.FIXED64);
    w.double(value);
  }
}
