import { ProtoReader } from './reader.js';
import { ProtoError, ProtoErrorCodes } from '../errors.js';
import type {
  AnyValueJson,
  ExemplarJson,
  ExponentialHistogramDataPointJson,
  HistogramDataPointJson,
  KeyValueJson,
  LogRecordJson,
  MetricJson,
  NumberDataPointJson,
  OtlpLogsRequestJson,
  OtlpMetricsRequestJson,
  ResourceJson,
  ResourceLogsJson,
  ResourceMetricsJson,
  ScopeJson,
  ScopeLogsJson,
  ScopeMetricsJson,
  SummaryDataPointJson,
} from './json-types.js';

/**
 * Decoders from OTLP protobuf to the OTLP/JSON form, covering every metric type and log field of the spec (the
 * aggregator accepts OTLP from any SDK or Collector). Unknown fields are skipped, as protobuf requires. Field numbers
 * are those of opentelemetry-proto v1 (see protocol/proto/).
 */

export function decodeMetricsRequest(bytes: Uint8Array): OtlpMetricsRequestJson {
  const r = new ProtoReader(bytes);
  const out: OtlpMetricsRequestJson = { resourceMetrics: [] };
  r.fields(r.end, (f, w) => {
    if (f === 1 && w === 2) out.resourceMetrics.push(resourceMetrics(r, r.submessageEnd()));
    else r.skip(w);
  });
  return out;
}

export function decodeLogsRequest(bytes: Uint8Array): OtlpLogsRequestJson {
  const r = new ProtoReader(bytes);
  const out: OtlpLogsRequestJson = { resourceLogs: [] };
  r.fields(r.end, (f, w) => {
    if (f === 1 && w === 2) out.resourceLogs.push(resourceLogs(r, r.submessageEnd()));
    else r.skip(w);
  });
  return out;
}

const u64 = (r: ProtoReader): string => r.fixed64Big().toString();
const s64 = (r: ProtoReader): string => r.sfixed64Big().toString();
const int64 = (r: ProtoReader): string => BigInt.asIntN(64, r.varintBig()).toString();
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const zigzag32 = (n: number): number => (n >>> 1) ^ -(n & 1);

/** Deepest AnyValue nesting followed; deeper input is refused (TOO_DEEP) rather than overflowing the stack. */
export const MAX_ANY_VALUE_DEPTH = 64;

export function anyValue(r: ProtoReader, end: number, depth = 0): AnyValueJson {
  if (depth > MAX_ANY_VALUE_DEPTH) {
    throw new ProtoError(
      ProtoErrorCodes.TOO_DEEP,
      `AnyValue at byte ${r.pos} nests arrays or key-value lists more than ${MAX_ANY_VALUE_DEPTH} levels deep`,
    );
  }
  const v: AnyValueJson = {};
  r.fields(end, (f, w) => {
    if (f === 1 && w === 2) v.stringValue = r.string();
    else if (f === 2 && w === 0) v.boolValue = r.varint() !== 0;
    else if (f === 3 && w === 0) v.intValue = int64(r);
    else if (f === 4 && w === 1) v.doubleValue = r.double();
    else if (f === 5 && w === 2)
      v.arrayValue = { values: repeated(r, r.submessageEnd(), 1, (rr, e) => anyValue(rr, e, depth + 1)) };
    else if (f === 6 && w === 2)
      v.kvlistValue = { values: repeated(r, r.submessageEnd(), 1, (rr, e) => keyValue(rr, e, depth + 1)) };
    else if (f === 7 && w === 2) v.bytesValue = Buffer.from(r.bytes()).toString('base64');
    else r.skip(w);
  });
  return v;
}

export function keyValue(r: ProtoReader, end: number, depth = 0): KeyValueJson {
  const kv: KeyValueJson = { key: '', value: {} };
  r.fields(end, (f, w) => {
    if (f === 1 && w === 2) kv.key = r.string();
    else if (f === 2 && w === 2) kv.value = anyValue(r, r.submessageEnd(), depth);
    else r.skip(w);
  });
  return kv;
}

/** All occurrences of one submessage field, e.g. ArrayValue.values. */
function repeated<T>(r: ProtoReader, end: number, field: number, read: (r: ProtoReader, end: number) => T): T[] {
  const out: T[] = [];
  r.fields(end, (f, w) => {
    if (f === field && w === 2) out.push(read(r, r.submessageEnd()));
    else r.skip(w);
  });
  return out;
}

/** A repeated scalar that may be packed (wire 2, the proto3 default) or not. */
function scalars<T>(r: ProtoReader, w: number, unpackedWire: number, read: (r: ProtoReader) => T, into: T[]): void {
  if (w === unpackedWire) {
    into.push(read(r));
    return;
  }
  const end = r.submessageEnd();
  const outer = r.end;
  r.end = end; // a malformed packed run must not read into the next field
  while (r.pos < end) into.push(read(r));
  r.end = outer;
}

export function resource(r: ProtoReader, end: number): ResourceJson {
  const res: ResourceJson = { attributes: [] };
  r.fields(end, (f, w) => {
    if (f === 1 && w === 2) res.attributes.push(keyValue(r, r.submessageEnd()));
    else if (f === 2 && w === 0) res.droppedAttributesCount = r.varint();
    else r.skip(w);
  });
  return res;
}

function scope(r: ProtoReader, end: number): ScopeJson {
  const s: ScopeJson = {};
  r.fields(end, (f, w) => {
    if (f === 1 && w === 2) s.name = r.string();
    else if (f === 2 && w === 2) s.version = r.string();
    else if (f === 3 && w === 2) (s.attributes ??= []).push(keyValue(r, r.submessageEnd()));
    else if (f === 4 && w === 0) s.droppedAttributesCount = r.varint();
    else r.skip(w);
  });
  return s;
}

function resourceMetrics(r: ProtoReader, end: number): ResourceMetricsJson {
  const rm: ResourceMetricsJson = { scopeMetrics: [] };
  r.fields(end, (f, w) => {
    if (f === 1 && w === 2) rm.resource = resource(r, r.submessageEnd());
    else if (f === 2 && w === 2) rm.scopeMetrics.push(scopeMetrics(r, r.submessageEnd()));
    else if (f === 3 && w === 2) rm.schemaUrl = r.string();
    else r.skip(w);
  });
  return rm;
}

function scopeMetrics(r: ProtoReader, end: number): ScopeMetricsJson {
  const sm: ScopeMetricsJson = { metrics: [] };
  r.fields(end, (f, w) => {
    if (f === 1 && w === 2) sm.scope = scope(r, r.submessageEnd());
    else if (f === 2 && w === 2) sm.metrics.push(metric(r, r.submessageEnd()));
    else if (f === 3 && w === 2) sm.schemaUrl = r.string();
    else r.skip(w);
  });
  return sm;
}

function metric(r: ProtoReader, end: number): MetricJson {
  const m: MetricJson = { name: '' };
  r.fields(end, (f, w) => {
    if (w !== 2) return r.skip(w);
    switch (f) {
      case 1:
        m.name = r.string();
        return;
      case 2:
        m.description = r.string();
        return;
      case 3:
        m.unit = r.string();
        return;
      case 5:
        m.gauge = { dataPoints: repeated(r, r.submessageEnd(), 1, numberPoint) };
        return;
      case 7:
        m.sum = sum(r, r.submessageEnd());
        return;
      case 9:
        m.histogram = aggregated(r, r.submessageEnd(), histogramPoint);
        return;
      case 10:
        m.exponentialHistogram = aggregated(r, r.submessageEnd(), expHistogramPoint);
        return;
      case 11:
        m.summary = { dataPoints: repeated(r, r.submessageEnd(), 1, summaryPoint) };
        return;
      case 12:
        (m.metadata ??= []).push(keyValue(r, r.submessageEnd()));
        return;
      default:
        r.skip(w);
    }
  });
  return m;
}

function sum(r: ProtoReader, end: number): NonNullable<MetricJson['sum']> {
  const s: NonNullable<MetricJson['sum']> = { dataPoints: [] };
  r.fields(end, (f, w) => {
    if (f === 1 && w === 2) s.dataPoints.push(numberPoint(r, r.submessageEnd()));
    else if (f === 2 && w === 0) s.aggregationTemporality = r.varint();
    else if (f === 3 && w === 0) s.isMonotonic = r.varint() !== 0;
    else r.skip(w);
  });
  return s;
}

function aggregated<P>(
  r: ProtoReader,
  end: number,
  point: (r: ProtoReader, end: number) => P,
): { dataPoints: P[]; aggregationTemporality?: number } {
  const h: { dataPoints: P[]; aggregationTemporality?: number } = { dataPoints: [] };
  r.fields(end, (f, w) => {
    if (f === 1 && w === 2) h.dataPoints.push(point(r, r.submessageEnd()));
    else if (f === 2 && w === 0) h.aggregationTemporality = r.varint();
    else r.skip(w);
  });
  return h;
}

function numberPoint(r: ProtoReader, end: number): NumberDataPointJson {
  const p: NumberDataPointJson = { attributes: [] };
  r.fields(end, (f, w) => {
    if (f === 7 && w === 2) p.attributes.push(keyValue(r, r.submessageEnd()));
    else if (f === 2 && w === 1) p.startTimeUnixNano = u64(r);
    else if (f === 3 && w === 1) p.timeUnixNano = u64(r);
    else if (f === 4 && w === 1) p.asDouble = r.double();
    else if (f === 6 && w === 1) p.asInt = s64(r);
    else if (f === 5 && w === 2) (p.exemplars ??= []).push(exemplar(r, r.submessageEnd()));
    else if (f === 8 && w === 0) p.flags = r.varint();
    else r.skip(w);
  });
  return p;
}

function exemplar(r: ProtoReader, end: number): ExemplarJson {
  const e: ExemplarJson = {};
  r.fields(end, (f, w) => {
    if (f === 7 && w === 2) (e.filteredAttributes ??= []).push(keyValue(r, r.submessageEnd()));
    else if (f === 2 && w === 1) e.timeUnixNano = u64(r);
    else if (f === 3 && w === 1) e.asDouble = r.double();
    else if (f === 6 && w === 1) e.asInt = s64(r);
    else if (f === 4 && w === 2) e.spanId = hex(r.bytes());
    else if (f === 5 && w === 2) e.traceId = hex(r.bytes());
    else r.skip(w);
  });
  return e;
}

function histogramPoint(r: ProtoReader, end: number): HistogramDataPointJson {
  const p: HistogramDataPointJson = { attributes: [], bucketCounts: [], explicitBounds: [] };
  r.fields(end, (f, w) => {
    if (f === 9 && w === 2) p.attributes.push(keyValue(r, r.submessageEnd()));
    else if (f === 2 && w === 1) p.startTimeUnixNano = u64(r);
    else if (f === 3 && w === 1) p.timeUnixNano = u64(r);
    else if (f === 4 && w === 1) p.count = u64(r);
    else if (f === 5 && w === 1) p.sum = r.double();
    else if (f === 6 && (w === 2 || w === 1)) scalars(r, w, 1, u64, p.bucketCounts);
    else if (f === 7 && (w === 2 || w === 1)) scalars(r, w, 1, (x) => x.double(), p.explicitBounds);
    else if (f === 8 && w === 2) (p.exemplars ??= []).push(exemplar(r, r.submessageEnd()));
    else if (f === 10 && w === 0) p.flags = r.varint();
    else if (f === 11 && w === 1) p.min = r.double();
    else if (f === 12 && w === 1) p.max = r.double();
    else r.skip(w);
  });
  return p;
}

function buckets(r: ProtoReader, end: number): { offset?: number; bucketCounts: string[] } {
  const b: { offset?: number; bucketCounts: string[] } = { bucketCounts: [] };
  r.fields(end, (f, w) => {
    if (f === 1 && w === 0) b.offset = zigzag32(r.varint());
    else if (f === 2 && (w === 2 || w === 0)) scalars(r, w, 0, (x) => x.varintBig().toString(), b.bucketCounts);
    else r.skip(w);
  });
  return b;
}

function expHistogramPoint(r: ProtoReader, end: number): ExponentialHistogramDataPointJson {
  const p: ExponentialHistogramDataPointJson = { attributes: [] };
  r.fields(end, (f, w) => {
    if (f === 1 && w === 2) p.attributes.push(keyValue(r, r.submessageEnd()));
    else if (f === 2 && w === 1) p.startTimeUnixNano = u64(r);
    else if (f === 3 && w === 1) p.timeUnixNano = u64(r);
    else if (f === 4 && w === 1) p.count = u64(r);
    else if (f === 5 && w === 1) p.sum = r.double();
    else if (f === 6 && w === 0) p.scale = zigzag32(r.varint());
    else if (f === 7 && w === 1) p.zeroCount = u64(r);
    else if (f === 8 && w === 2) p.positive = buckets(r, r.submessageEnd());
    else if (f === 9 && w === 2) p.negative = buckets(r, r.submessageEnd());
    else if (f === 10 && w === 0) p.flags = r.varint();
    else if (f === 11 && w === 2) (p.exemplars ??= []).push(exemplar(r, r.submessageEnd()));
    else if (f === 12 && w === 1) p.min = r.double();
    else if (f === 13 && w === 1) p.max = r.double();
    else if (f === 14 && w === 1) p.zeroThreshold = r.double();
    else r.skip(w);
  });
  return p;
}

function summaryPoint(r: ProtoReader, end: number): SummaryDataPointJson {
  const p: SummaryDataPointJson = { attributes: [], quantileValues: [] };
  r.fields(end, (f, w) => {
    if (f === 7 && w === 2) p.attributes.push(keyValue(r, r.submessageEnd()));
    else if (f === 2 && w === 1) p.startTimeUnixNano = u64(r);
    else if (f === 3 && w === 1) p.timeUnixNano = u64(r);
    else if (f === 4 && w === 1) p.count = u64(r);
    else if (f === 5 && w === 1) p.sum = r.double();
    else if (f === 6 && w === 2) {
      const q: { quantile?: number; value?: number } = {};
      r.fields(r.submessageEnd(), (qf, qw) => {
        if (qf === 1 && qw === 1) q.quantile = r.double();
        else if (qf === 2 && qw === 1) q.value = r.double();
        else r.skip(qw);
      });
      p.quantileValues.push(q);
    } else if (f === 8 && w === 0) p.flags = r.varint();
    else r.skip(w);
  });
  return p;
}

function resourceLogs(r: ProtoReader, end: number): ResourceLogsJson {
  const rl: ResourceLogsJson = { scopeLogs: [] };
  r.fields(end, (f, w) => {
    if (f === 1 && w === 2) rl.resource = resource(r, r.submessageEnd());
    else if (f === 2 && w === 2) rl.scopeLogs.push(scopeLogs(r, r.submessageEnd()));
    else if (f === 3 && w === 2) rl.schemaUrl = r.string();
    else r.skip(w);
  });
  return rl;
}

function scopeLogs(r: ProtoReader, end: number): ScopeLogsJson {
  const sl: ScopeLogsJson = { logRecords: [] };
  r.fields(end, (f, w) => {
    if (f === 1 && w === 2) sl.scope = scope(r, r.submessageEnd());
    else if (f === 2 && w === 2) sl.logRecords.push(logRecord(r, r.submessageEnd()));
    else if (f === 3 && w === 2) sl.schemaUrl = r.string();
    else r.skip(w);
  });
  return sl;
}

export function logRecord(r: ProtoReader, end: number): LogRecordJson {
  const l: LogRecordJson = { attributes: [] };
  r.fields(end, (f, w) => {
    if (f === 1 && w === 1) l.timeUnixNano = u64(r);
    else if (f === 11 && w === 1) l.observedTimeUnixNano = u64(r);
    else if (f === 2 && w === 0) l.severityNumber = r.varint();
    else if (f === 3 && w === 2) l.severityText = r.string();
    else if (f === 5 && w === 2) l.body = anyValue(r, r.submessageEnd());
    else if (f === 6 && w === 2) l.attributes.push(keyValue(r, r.submessageEnd()));
    else if (f === 7 && w === 0) l.droppedAttributesCount = r.varint();
    else if (f === 8 && w === 5) l.flags = r.fixed32();
    else if (f === 9 && w === 2) l.traceId = hex(r.bytes());
    else if (f === 10 && w === 2) l.spanId = hex(r.bytes());
    else if (f === 12 && w === 2) l.eventName = r.string();
    else r.skip(w);
  });
  return l;
}
