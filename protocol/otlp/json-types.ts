/**
 * OTLP requests in their JSON form (the proto3 JSON mapping as OTLP/HTTP uses it): lowerCamelCase names, 64-bit
 * integers as decimal strings, trace and span ids as hex, enums as numbers. `buffer dump` prints these, and tests
 * compare against them. Absent fields are left out, as a proto3 JSON encoder would.
 */

export interface AnyValueJson {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
  doubleValue?: number;
  arrayValue?: { values: AnyValueJson[] };
  kvlistValue?: { values: KeyValueJson[] };
  bytesValue?: string; // base64, as the proto3 JSON mapping writes bytes
}

export interface KeyValueJson {
  key: string;
  value: AnyValueJson;
}

export interface ResourceJson {
  attributes: KeyValueJson[];
  droppedAttributesCount?: number;
}

export interface ScopeJson {
  name?: string;
  version?: string;
  attributes?: KeyValueJson[];
  droppedAttributesCount?: number;
}

export interface ExemplarJson {
  filteredAttributes?: KeyValueJson[];
  timeUnixNano?: string;
  asDouble?: number;
  asInt?: string;
  spanId?: string;
  traceId?: string;
}

export interface NumberDataPointJson {
  attributes: KeyValueJson[];
  startTimeUnixNano?: string;
  timeUnixNano?: string;
  asDouble?: number;
  asInt?: string;
  exemplars?: ExemplarJson[];
  flags?: number;
}

export interface HistogramDataPointJson {
  attributes: KeyValueJson[];
  startTimeUnixNano?: string;
  timeUnixNano?: string;
  count?: string;
  sum?: number;
  bucketCounts: string[];
  explicitBounds: number[];
  exemplars?: ExemplarJson[];
  flags?: number;
  min?: number;
  max?: number;
}

export interface ExponentialHistogramDataPointJson {
  attributes: KeyValueJson[];
  startTimeUnixNano?: string;
  timeUnixNano?: string;
  count?: string;
  sum?: number;
  scale?: number;
  zeroCount?: string;
  positive?: { offset?: number; bucketCounts: string[] };
  negative?: { offset?: number; bucketCounts: string[] };
  flags?: number;
  exemplars?: ExemplarJson[];
  min?: number;
  max?: number;
  zeroThreshold?: number;
}

export interface SummaryDataPointJson {
  attributes: KeyValueJson[];
  startTimeUnixNano?: string;
  timeUnixNano?: string;
  count?: string;
  sum?: number;
  quantileValues: { quantile?: number; value?: number }[];
  flags?: number;
}

export interface MetricJson {
  name: string;
  description?: string;
  unit?: string;
  gauge?: { dataPoints: NumberDataPointJson[] };
  sum?: { dataPoints: NumberDataPointJson[]; aggregationTemporality?: number; isMonotonic?: boolean };
  histogram?: { dataPoints: HistogramDataPointJson[]; aggregationTemporality?: number };
  exponentialHistogram?: { dataPoints: ExponentialHistogramDataPointJson[]; aggregationTemporality?: number };
  summary?: { dataPoints: SummaryDataPointJson[] };
  metadata?: KeyValueJson[];
}

export interface ScopeMetricsJson {
  scope?: ScopeJson;
  metrics: MetricJson[];
  schemaUrl?: string;
}

export interface ResourceMetricsJson {
  resource?: ResourceJson;
  scopeMetrics: ScopeMetricsJson[];
  schemaUrl?: string;
}

export interface OtlpMetricsRequestJson {
  resourceMetrics: ResourceMetricsJson[];
}

export interface LogRecordJson {
  timeUnixNano?: string;
  observedTimeUnixNano?: string;
  severityNumber?: number;
  severityText?: string;
  body?: AnyValueJson;
  attributes: KeyValueJson[];
  droppedAttributesCount?: number;
  flags?: number;
  traceId?: string;
  spanId?: string;
  eventName?: string;
}

export interface ScopeLogsJson {
  scope?: ScopeJson;
  logRecords: LogRecordJson[];
  schemaUrl?: string;
}

export interface ResourceLogsJson {
  resource?: ResourceJson;
  scopeLogs: ScopeLogsJson[];
  schemaUrl?: string;
}

export interface OtlpLogsRequestJson {
  resourceLogs: ResourceLogsJson[];
}
