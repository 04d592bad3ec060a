import type { DeviceReadings, Reading } from '../payload/types.js';
import { resolveEncoderOptions, type EncoderOptions, type ResolvedEncoderOptions } from './options.js';
import { SEQ_METRIC } from './semconv.js';
import { ResourceTemplate, writeStringKeyValue } from './resource.js';
import { ProtoWriter, Wire } from './writer.js';
import { ReadingColumns } from './reading-columns.js';

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
  /** Columns for `encode`, reused. */
  private readonly scratch = new ReadingColumns();

  constructor(options: EncoderOptions) {
    this.opts = resolveEncoderOptions(options);
    this.template = new ResourceTemplate(this.opts);
  }

  /** The readings of `batch` as one request (a device listed twice becomes one Resource). */
  encode(batch: readonly DeviceReadings[]): Uint8Array {
    const c = this.scratch;
    c.clear();
    for (const device of batch) c.add(device.deviceId, device.readings);
    const devices: number[] = [];
    for (let d = 0; d < c.deviceCount; d++) devices.push(d);
    const request = this.encodeColumns(c, devices, c.byDevice());
    c.clear();
    return request;
  }

  /**
   * The readings of `devices` (indices into `c.deviceIds`) as one request; `groups` is `c.byDevice()`, computed once
   * for all the requests cut from the same columns.
   */
  encodeColumns(
    c: ReadingColumns,
    devices: readonly number[],
    groups: { order: Int32Array; first: Int32Array },
  ): Uint8Array {
    const w = this.w.reset();
    this.lastAttrs = null; // lists are never changed in place, but none is kept past its batch either
    for (const d of devices) {
      const from = groups.first[d];
      const to = groups.first[d + 1];
      if (from === to) continue;
      w.fork(1); // resource_metrics
      this.template.writeResource(w, c.deviceIds[d]);
      w.fork(2); // scope_metrics
      w.raw(this.template.scopeField);
      this.writeMetrics(w, c, groups.order, from, to);
      w.join();
      w.join();
    }
    return w.finish();
  }

  /** The metrics of one device: readings `order[from] … order[to - 1]` of `c`. */
  private writeMetrics(w: ProtoWriter, c: ReadingColumns, order: Int32Array, from: number, to: number): void {
    // Distinct names in order of first appearance. Readings of one device nearly always repeat the same names in the
    // same order, so the lookup below hits the name at the same position and rarely scans.
    const seen = this.seen;
    const names = this.order;
    seen.clear();
    names.length = 0;
    let hasSeq = false;
    for (let k = from; k < to; k++) {
      const i = order[k];
      if (c.seq[i] >= 0) hasSeq = true;
      const end = c.start[i] + c.count[i];
      for (let v = c.start[i]; v < end; v++) {
        const name = c.names[v];
        if (!seen.has(name)) {
          seen.set(name, names.length);
          names.push(name);
        }
      }
    }

    for (let m = 0; m < names.length; m++) {
      const name = names[m];
      const isSum = this.opts.counters.has(name);
      w.fork(2); // metrics
      w.stringField(1, name);
      w.fork(isSum ? 7 : 5);
      let hint = m;
      for (let k = from; k < to; k++) {
        const i = order[k];
        const start = c.start[i];
        const count = c.count[i];
        let j = hint < count && c.names[start + hint] === name ? hint : -1;
        for (let x = 0; j < 0 && x < count; x++) if (c.names[start + x] === name) j = x;
        if (j < 0) continue;
        hint = j;
        this.writePoint(w, c.attributes[i], c.ts[i], c.values[start + j]);
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
      for (let k = from; k < to; k++) {
        const i = order[k];
        if (c.seq[i] >= 0) this.writePoint(w, c.attributes[i], c.ts[i], c.seq[i]);
      }
      w.join();
      w.join();
    }
  }

  /** NumberDataPoint under field 1 (data_points). */
  private writePoint(w: ProtoWriter, attrs: readonly string[] | null, ts: number, value: number): void {
    w.fork(1);
    if (attrs !== null) {
      if (attrs !== this.lastAttrs) {
        const a = this.attrWriter.reset();
        for (let i = 0; i < attrs.length; i += 2) writeStringKeyValue(a, 7, attrs[i], attrs[i + 1]);
        this.lastAttrBytes = a.finish();
        this.lastAttrs = attrs;
      }
      w.raw(this.lastAttrBytes);
    }
    writeTimeAndValue(w, ts, value);
    w.join();
  }
}

function writeTimeAndValue(w: ProtoWriter, ts: number, value: number): void {
  w.tag(3, Wire.FIXED64);
  w.timeFromMs(ts);
  if (Number.isSafeInteger(value)) {
    w.tag(6, Wire.FIXED64);
    w.sfixed64(value);
  } else {
    w.tag(4, Wire.FIXED64);
    w.double(value);
  }
}
