/**
 * Which OTLP request a batch holds. One representation everywhere: the agent's stored records (one byte), the uplink
 * and peer messages (uplink.proto `Signal`, same numbers), the aggregator's decoder.
 */
export enum Signal {
  UNSPECIFIED = 0,
  METRICS = 1,
  LOGS = 2,
  /** Only on the aggregator's side of OTLP ingest and export: agents never store or uplink traces. */
  TRACES = 3,
}

/** The OTLP/HTTP path and the lower-case name of a signal (`/v1/metrics`, metric labels). */
export function signalName(s: Signal): 'metrics' | 'logs' | 'traces' {
  return s === Signal.LOGS ? 'logs' : s === Signal.TRACES ? 'traces' : 'metrics';
}

/** The OTLP/gRPC Export method of a signal. */
export function otlpGrpcPath(s: Signal): string {
  if (s === Signal.LOGS) return '/opentelemetry.proto.collector.logs.v1.LogsService/Export';
  if (s === Signal.TRACES) return '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
  return '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';
}
