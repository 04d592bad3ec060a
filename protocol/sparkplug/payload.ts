/**
 * The Sparkplug B payload (Eclipse Sparkplug 3.0, `sparkplug_b.proto` of Eclipse Tahu), read with the project's
 * bounds-checked protobuf reader: a hostile or truncated payload ends in a ProtoError, never in an out-of-range read.
 * Only what a telemetry consumer needs is kept: timestamps, seq, and each metric's name, alias, datatype, flags and
 * value (Templates with their member metrics; DataSets, metadata and property sets are noted, not kept).
 *
 *   Payload { timestamp = 1 (uint64), metrics = 2 (Metric), seq = 3 (uint64), uuid = 4, body = 5 }
 *   Metric  { name = 1, alias = 2 (uint64), timestamp = 3 (uint64), datatype = 4 (uint32), is_historical = 5,
 *             is_transient = 6, is_null = 7, metadata = 8, properties = 9, int_value = 10 (uint32),
 *             long_value = 11 (uint64), float_value = 12, double_value = 13, boolean_value = 14, string_value = 15,
 *             bytes_value = 16, dataset_value = 17, template_value = 18, extension_value = 19 }
 *   Template { version = 1, metrics = 2 (Metric), parameters = 3, template_ref = 4, is_definition = 5 }
 */
import { ProtoReader } from '../otlp/reader.js';
import { ProtoWriter } from '../otlp/writer.js';
import { ProtoError, ProtoErrorCodes } from '../errors.js';

/** Sparkplug B datatypes [tck-id-payloads-metric-datatype-value]. */
export const DataType = {
  Unknown: 0,
  Int8: 1,
  Int16: 2,
  Int32: 3,
  Int64: 4,
  UInt8: 5,
  UInt16: 6,
  UInt32: 7,
  UInt64: 8,
  Float: 9,
  Double: 10,
  Boolean: 11,
  String: 12,
  DateTime: 13,
  Text: 14,
  UUID: 15,
  DataSet: 16,
  Bytes: 17,
  File: 18,
  Template: 19,
} as const;

export interface SparkplugTemplate {
  metrics: SparkplugMetric[];
  isDefinition: boolean;
}

/** A metric's value as its wire field carried it; the datatype says how to read an integer. */
export type RawValue =
  | { kind: 'int'; value: number } // int_value, a uint32 on the wire
  | { kind: 'long'; value: bigint } // long_value, a uint64 on the wire
  | { kind: 'float' | 'double'; value: number }
  | { kind: 'boolean'; value: boolean }
  | { kind: 'string'; value: string }
  | { kind: 'template'; value: SparkplugTemplate }
  | { kind: 'bytes' | 'dataset' | 'extension' };

export interface SparkplugMetric {
  name?: string;
  alias?: number;
  timestamp?: number;
  datatype?: number;
  isHistorical: boolean;
  isTransient: boolean;
  isNull: boolean;
  value?: RawValue;
}

export interface SparkplugPayload {
  timestamp?: number;
  seq?: number;
  metrics: SparkplugMetric[];
}

/** Templates nest; deeper than this is refused (a hostile payload cannot exhaust the stack). */
const MAX_DEPTH = 16;
const TWO_64 = 1n << 64n;

export function decodePayload(bytes: Uint8Array): SparkplugPayload {
  const r = new ProtoReader(bytes);
  const out: SparkplugPayload = { metrics: [] };
  r.fields(bytes.length, (field, wire) => {
    if (field === 1 && wire === 0) out.timestamp = Number(r.varintBig());
    else if (field === 2 && wire === 2) out.metrics.push(metric(r, r.submessageEnd(), 0));
    else if (field === 3 && wire === 0) out.seq = Number(r.varintBig());
    else r.skip(wire);
  });
  return out;
}

function metric(r: ProtoReader, end: number, depth: number): SparkplugMetric {
  if (depth > MAX_DEPTH) throw new ProtoError(ProtoErrorCodes.TOO_DEEP, `templates nest deeper than ${MAX_DEPTH}`);
  const m: SparkplugMetric = { isHistorical: false, isTransient: false, isNull: false };
  r.fields(end, (field, wire) => {
    switch (field) {
      case 1:
        r.expect(field, wire, 2);
        m.name = r.string();
        return;
      case 2:
        r.expect(field, wire, 0);
        m.alias = Number(r.varintBig());
        return;
      case 3:
        r.expect(field, wire, 0);
        m.timestamp = Number(r.varintBig());
        return;
      case 4:
        r.expect(field, wire, 0);
        m.datatype = r.varint();
        return;
      case 5:
      case 6:
      case 7: {
        r.expect(field, wire, 0);
        const on = r.varint() !== 0;
        if (field === 5) m.isHistorical = on;
        else if (field === 6) m.isTransient = on;
        else m.isNull = on;
        return;
      }
      case 10:
        r.expect(field, wire, 0);
        m.value = { kind: 'int', value: Number(r.varintBig() & 0xffffffffn) };
        return;
      case 11:
        r.expect(field, wire, 0);
        m.value = { kind: 'long', value: r.varintBig() };
        return;
      case 12:
        r.expect(field, wire, 5);
        m.value = { kind: 'float', value: r.float() };
        return;
      case 13:
        r.expect(field, wire, 1);
        m.value = { kind: 'double', value: r.double() };
        return;
      case 14:
        r.expect(field, wire, 0);
        m.value = { kind: 'boolean', value: r.varint() !== 0 };
        return;
      case 15:
        r.expect(field, wire, 2);
        m.value = { kind: 'string', value: r.string() };
        return;
      case 18:
        r.expect(field, wire, 2);
        m.value = { kind: 'template', value: template(r, r.submessageEnd(), depth + 1) };
        return;
      case 16:
      case 17:
      case 19:
        r.skip(wire);
        m.value = { kind: field === 16 ? 'bytes' : field === 17 ? 'dataset' : 'extension' };
        return;
      default:
        r.skip(wire); // metadata, properties, and fields of later versions
    }
  });
  return m;
}

function template(r: ProtoReader, end: number, depth: number): SparkplugTemplate {
  const t: SparkplugTemplate = { metrics: [], isDefinition: false };
  r.fields(end, (field, wire) => {
    if (field === 2 && wire === 2) t.metrics.push(metric(r, r.submessageEnd(), depth));
    else if (field === 5 && wire === 0) t.isDefinition = r.varint() !== 0;
    else r.skip(wire);
  });
  return t;
}

/**
 * A metric's value as a number (integers by their datatype's signedness, booleans 0/1), a string, or null when it
 * has neither (a DataSet, bytes, a template, or no value).
 */
export function scalarOf(value: RawValue | undefined, datatype: number): number | string | null {
  if (value === undefined) return null;
  switch (value.kind) {
    case 'int':
      if (datatype === DataType.Int8) return (value.value << 24) >> 24;
      if (datatype === DataType.Int16) return (value.value << 16) >> 16;
      if (datatype === DataType.Int32) return value.value | 0;
      return value.value;
    case 'long': {
      const signed = datatype === DataType.Int64 || datatype === DataType.Int32 || datatype === DataType.Int16;
      const v = signed || datatype === DataType.Int8 ? BigInt.asIntN(64, value.value) : value.value % TWO_64;
      return Number(v);
    }
    case 'float':
    case 'double':
      return value.value;
    case 'boolean':
      return value.value ? 1 : 0;
    case 'string':
      return value.value;
    default:
      return null;
  }
}

/** A Sparkplug payload of boolean metrics, for NCMD commands (`Node Control/Rebirth` = true). */
export function encodeCommand(timestamp: number, metrics: readonly { name: string; value: boolean }[]): Uint8Array {
  const w = new ProtoWriter(256);
  w.tag(1, 0);
  w.varint(timestamp);
  for (const m of metrics) {
    w.fork(2);
    w.stringField(1, m.name);
    w.tag(3, 0);
    w.varint(timestamp);
    w.tag(4, 0);
    w.varint(DataType.Boolean);
    w.tag(14, 0);
    w.bool(m.value);
    w.join();
  }
  return w.finish();
}
