import protobuf from 'protobufjs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Signal } from '../../protocol/otlp/signal.js';

/**
 * OTLP/JSON (the proto3 JSON mapping as OTLP/HTTP specifies it: lowerCamelCase names, 64-bit integers as strings or
 * numbers, enums as integers, trace and span ids as hex) → the protobuf request, so both encodings take one path.
 * Reflection over the project's copies of the OTLP .proto files; JSON is the slow path by nature.
 */

const protoDir = fileURLToPath(new URL('../../../protocol/proto/', import.meta.url));
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => join(protoDir, target);
root.loadSync(
  [
    'opentelemetry/proto/collector/metrics/v1/metrics_service.proto',
    'opentelemetry/proto/collector/logs/v1/logs_service.proto',
    'opentelemetry/proto/collector/trace/v1/trace_service.proto',
  ],
  { keepCase: false },
);
root.resolveAll();

const REQUEST: Record<Signal.METRICS | Signal.LOGS | Signal.TRACES, protobuf.Type> = {
  [Signal.METRICS]: root.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest'),
  [Signal.LOGS]: root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest'),
  [Signal.TRACES]: root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest'),
};

/** Fields OTLP/JSON writes as hex where the proto3 mapping would write base64. */
const HEX_IDS = new Set(['traceId', 'spanId', 'parentSpanId']);
const MAX_DEPTH = 96;

function hexIdsToBase64(v: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw new Error(`nested deeper than ${MAX_DEPTH} levels`);
  if (Array.isArray(v)) {
    for (const x of v) hexIdsToBase64(x, depth + 1);
    return;
  }
  if (v === null || typeof v !== 'object') return;
  const o = v as Record<string, unknown>;
  for (const [k, x] of Object.entries(o)) {
    if (HEX_IDS.has(k) && typeof x === 'string') {
      if (!/^([0-9a-fA-F]{2})*$/.test(x)) throw new Error(`${k} ${JSON.stringify(x.slice(0, 40))} is not hex`);
      o[k] = Buffer.from(x, 'hex').toString('base64');
    } else hexIdsToBase64(x, depth + 1);
  }
}

/** The protobuf bytes of an OTLP/JSON request body; throws Error with the reason when it is not one. */
export function otlpJsonToProto(signal: Signal, text: string): Uint8Array {
  const value: unknown = JSON.parse(text);
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new Error('the body is not a JSON object');
  hexIdsToBase64(value, 0);
  const type = REQUEST[signal as Signal.METRICS];
  return type.encode(type.fromObject(value as Record<string, unknown>)).finish();
}

/** The Export*ServiceResponse as OTLP/JSON: `{}`, or `{ "partialSuccess": { … } }`. */
export function responseJson(signal: Signal, rejected: number, message: string): string {
  if (rejected === 0 && message === '') return '{}';
  const field =
    signal === Signal.TRACES ? 'rejectedSpans' : signal === Signal.LOGS ? 'rejectedLogRecords' : 'rejectedDataPoints';
  return JSON.stringify({ partialSuccess: { [field]: String(rejected), errorMessage: message } });
}
