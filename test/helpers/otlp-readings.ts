import type {
  OtlpMetricsRequestJson,
  OtlpLogsRequestJson,
  KeyValueJson,
  AnyValueJson,
} from '../../protocol/otlp/json-types.js';

export interface PointView {
  ts: string;
  value: number;
  attributes: Record<string, unknown>;
}

/** Per device, per metric, the points of OTLP/JSON requests (as `buffer dump` prints them), in order. */
export type DeviceMetrics = Map<string, Map<string, PointView[]>>;

export function anyValue(v: AnyValueJson): unknown {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.arrayValue) return v.arrayValue.values.map(anyValue);
  if (v.kvlistValue) return attrs(v.kvlistValue.values);
  return null;
}

export function attrs(kvs: KeyValueJson[] | undefined): Record<string, unknown> {
  return Object.fromEntries((kvs ?? []).map((kv) => [kv.key, anyValue(kv.value)]));
}

export function metricsByDevice(requests: unknown[]): DeviceMetrics {
  const out: DeviceMetrics = new Map();
  for (const req of requests as OtlpMetricsRequestJson[]) {
    for (const rm of req.resourceMetrics ?? []) {
      const device = String(attrs(rm.resource?.attributes)['device.id']);
      let metrics = out.get(device);
      if (!metrics) out.set(device, (metrics = new Map()));
      for (const sm of rm.scopeMetrics) {
        for (const m of sm.metrics) {
          const points = m.gauge?.dataPoints ?? m.sum?.dataPoints ?? [];
          let list = metrics.get(m.name);
          if (!list) metrics.set(m.name, (list = []));
          for (const p of points)
            list.push({
              ts: p.timeUnixNano ?? '',
              value: p.asDouble ?? Number(p.asInt),
              attributes: attrs(p.attributes),
            });
        }
      }
    }
  }
  return out;
}

/** Per device, the seqs carried by `otlp_edge.device.seq`, sorted. */
export function seqsByDevice(requests: unknown[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const [device, metrics] of metricsByDevice(requests)) {
    out.set(
      device,
      (metrics.get('otlp_edge.device.seq') ?? []).map((p) => p.value).sort((a, b) => a - b),
    );
  }
  return out;
}

export function logRecordsByDevice(
  requests: unknown[],
): Map<string, { ts: string; severity?: number; body: unknown; attributes: Record<string, unknown> }[]> {
  const out = new Map<
    string,
    { ts: string; severity?: number; body: unknown; attributes: Record<string, unknown> }[]
  >();
  for (const req of requests as OtlpLogsRequestJson[]) {
    for (const rl of req.resourceLogs ?? []) {
      const device = String(attrs(rl.resource?.attributes)['device.id']);
      const list = out.get(device) ?? [];
      out.set(device, list);
      for (const sl of rl.scopeLogs)
        for (const l of sl.logRecords)
          list.push({
            ts: l.timeUnixNano ?? '',
            severity: l.severityNumber,
            body: l.body ? anyValue(l.body) : null,
            attributes: attrs(l.attributes),
          });
    }
  }
  return out;
}
