/**
 * Normalized device data: what the payload codecs produce and the OTLP encoders consume.
 *
 * The shapes are chosen for the agent's hot path: one small object per reading, metric names and values in two
 * parallel arrays (no per-metric object), attributes as a flat `[key, value, key, value…]` list, and timestamps as
 * epoch milliseconds in a double (fractions carry sub-millisecond precision from RFC 3339 strings).
 */

export interface Reading {
  /** Epoch milliseconds (may carry a fraction for sub-millisecond precision). */
  ts: number;
  /** The device's sequence number, or -1 when the reading carried none. */
  seq: number;
  /** Metric names, parallel to `values`. Flattened with `.` (`env.hum`). */
  names: string[];
  /** Metric values; integers (and booleans, as 0/1) are encoded as OTLP `as_int`, everything else `as_double`. */
  values: number[];
  /** String attributes of the reading as `[key, value, key, value…]`, or null when it has none. */
  attributes: string[] | null;
}

/** An attribute or event body value, as JSON can carry it (OTLP AnyValue). */
export type AnyValue = string | number | boolean | null | AnyValue[] | { [key: string]: AnyValue };

export type SeverityName = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

export interface DeviceEvent {
  /** Epoch milliseconds. */
  ts: number;
  /** OTLP SeverityNumber (1 TRACE … 21 FATAL; 0 when the event named none). */
  severityNumber: number;
  /** The severity as the device sent it (`warn`), or '' when none. */
  severityText: string;
  /** The event body: a string or a structured value. */
  body: AnyValue;
  /** Event attributes as `[key, value, key, value…]`; values keep their JSON type. Null when none. */
  attributes: AnyValue[] | null;
}

/** The readings of one device, as the agent groups them for one batch. */
export interface DeviceReadings {
  deviceId: string;
  readings: Reading[];
}

/** The events of one device, as the agent groups them for one batch. */
export interface DeviceEvents {
  deviceId: string;
  events: DeviceEvent[];
}

/** Limits on one device message (agent/README.md "Payloads"). */
export interface PayloadLimits {
  /** Bytes per message; default 262,144 (256 KiB). */
  maxBytes: number;
  /** Metrics per reading; default 1,000. */
  maxMetrics: number;
  /** Readings (or events) per message; default 10,000. */
  maxReadings: number;
  /**
   * Nesting of objects/arrays; default 16. Counted from the reading or event object (level 1); a top-level list of
   * readings is level 0, so a reading may nest as deep in a batch as alone.
   */
  maxDepth: number;
}

export const DEFAULT_LIMITS: Readonly<PayloadLimits> = Object.freeze({
  maxBytes: 256 * 1024,
  maxMetrics: 1000,
  maxReadings: 10_000,
  maxDepth: 16,
});

/** Which encoding a payload is in. */
export type PayloadEncoding = 'json' | 'cbor';

export interface DecodeOptions {
  /** MQTT 5 content-type property, when the message had one. */
  contentType?: string;
  /** Arrival time at the agent, epoch ms: the `ts` of readings that carry none. */
  arrivalMs: number;
  /** Limits; DEFAULT_LIMITS when omitted. */
  limits?: PayloadLimits;
}
