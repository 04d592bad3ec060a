/**
 * The error catalogue of everything `protocol/` can reject. Every error a user (a firmware engineer, an operator)
 * can hit carries a stable code `OTLPEDGE_<AREA>_<WHAT>` and a message that says what was expected and what was got.
 * Codes are a public contract: metrics count rejections by code and devices receive them on their errors topic.
 */

export const PayloadErrorCodes = {
  /** The payload is larger than the per-message limit (256 KiB). */
  TOO_LARGE: 'OTLPEDGE_PAYLOAD_TOO_LARGE',
  /** The payload is empty. */
  EMPTY: 'OTLPEDGE_PAYLOAD_EMPTY',
  /** The JSON text is not valid JSON (or not valid UTF-8). */
  BAD_JSON: 'OTLPEDGE_PAYLOAD_BAD_JSON',
  /** The CBOR item is malformed, truncated, or uses a construct the agent does not accept. */
  BAD_CBOR: 'OTLPEDGE_PAYLOAD_BAD_CBOR',
  /** A text string is not valid UTF-8. */
  BAD_UTF8: 'OTLPEDGE_PAYLOAD_BAD_UTF8',
  /** The MQTT 5 content-type names an encoding the agent does not decode. */
  BAD_CONTENT_TYPE: 'OTLPEDGE_PAYLOAD_BAD_CONTENT_TYPE',
  /** Objects or arrays nest deeper than the limit. */
  TOO_DEEP: 'OTLPEDGE_PAYLOAD_TOO_DEEP',
  /** The top-level value is neither an object nor an array of objects, or a field has the wrong type. */
  BAD_SHAPE: 'OTLPEDGE_PAYLOAD_BAD_SHAPE',
  /** More than 10,000 readings or events in one message. */
  TOO_MANY_READINGS: 'OTLPEDGE_PAYLOAD_TOO_MANY_READINGS',
  /** More than 1,000 metrics in one reading. */
  TOO_MANY_METRICS: 'OTLPEDGE_PAYLOAD_TOO_MANY_METRICS',
  /** A reading carries no metric at all. */
  NO_METRICS: 'OTLPEDGE_PAYLOAD_NO_METRICS',
  /** A metric value is NaN, Infinity, or not a number/boolean. */
  BAD_VALUE: 'OTLPEDGE_PAYLOAD_BAD_VALUE',
  /** A metric or attribute name is empty, too long, or uses characters outside the allowed set. */
  BAD_NAME: 'OTLPEDGE_PAYLOAD_BAD_NAME',
  /** `ts` is neither epoch milliseconds nor an RFC 3339 string, or is out of range. */
  BAD_TS: 'OTLPEDGE_PAYLOAD_BAD_TS',
  /** `seq` is not an unsigned integer below 2^53. */
  BAD_SEQ: 'OTLPEDGE_PAYLOAD_BAD_SEQ',
  /** An event's `body` is missing or has the wrong type, or `severity` is unknown. */
  BAD_EVENT: 'OTLPEDGE_PAYLOAD_BAD_EVENT',
  /** An attribute value is not a string (explicit form) or an attribute is too long. */
  BAD_ATTRIBUTE: 'OTLPEDGE_PAYLOAD_BAD_ATTRIBUTE',
} as const;

export const TopicErrorCodes = {
  /** The device id in a topic is empty, longer than 128 characters, or has characters outside [A-Za-z0-9._:-]. */
  BAD_DEVICE_ID: 'OTLPEDGE_TOPIC_BAD_DEVICE_ID',
  /** The topic matches none of the configured templates. */
  NO_MATCH: 'OTLPEDGE_TOPIC_NO_MATCH',
  /** A configured topic template is malformed (no `{deviceId}`, wildcards, empty levels). */
  BAD_TEMPLATE: 'OTLPEDGE_TOPIC_BAD_TEMPLATE',
} as const;

export const ProtoErrorCodes = {
  /** A protobuf message is truncated or malformed. */
  MALFORMED: 'OTLPEDGE_PROTO_MALFORMED',
  /** A compressed payload could not be decompressed, or names an unknown compression. */
  BAD_COMPRESSION: 'OTLPEDGE_PROTO_BAD_COMPRESSION',
  /** A well-formed message carries a value outside the rules both ends share (a device id, a metric name). */
  BAD_FIELD: 'OTLPEDGE_PROTO_BAD_FIELD',
  /** An AnyValue nests arrays or key-value lists deeper than the decoder follows (64 levels). */
  TOO_DEEP: 'OTLPEDGE_PROTO_TOO_DEEP',
} as const;

export const RingErrorCodes = {
  /** The ring has no members, so no device has an owner. */
  EMPTY: 'OTLPEDGE_RING_EMPTY',
  /** A member id is empty or listed twice, or vnodes is not a positive integer. */
  BAD_MEMBER: 'OTLPEDGE_RING_BAD_MEMBER',
} as const;

export type PayloadErrorCode = (typeof PayloadErrorCodes)[keyof typeof PayloadErrorCodes];
export type TopicErrorCode = (typeof TopicErrorCodes)[keyof typeof TopicErrorCodes];
export type ProtoErrorCode = (typeof ProtoErrorCodes)[keyof typeof ProtoErrorCodes];
export type RingErrorCode = (typeof RingErrorCodes)[keyof typeof RingErrorCodes];

/** Base of every error with a stable code. `code` is what metrics and scripts key on; `message` is for people. */
export class OtlpEdgeError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'OtlpEdgeError';
    this.code = code;
  }
}

/** A device payload was rejected as a whole. `reason` is the short label used for metrics (`too_large`, …). */
export class PayloadError extends OtlpEdgeError {
  declare readonly code: PayloadErrorCode;
  constructor(code: PayloadErrorCode, message: string) {
    super(code, message);
    this.name = 'PayloadError';
  }
  /** Metric label: the code without its prefix, lower-cased (`OTLPEDGE_PAYLOAD_BAD_JSON` → `bad_json`). */
  get reason(): string {
    return this.code.slice('OTLPEDGE_PAYLOAD_'.length).toLowerCase();
  }
}

export class TopicError extends OtlpEdgeError {
  declare readonly code: TopicErrorCode;
  constructor(code: TopicErrorCode, message: string) {
    super(code, message);
    this.name = 'TopicError';
  }
}

export class ProtoError extends OtlpEdgeError {
  declare readonly code: ProtoErrorCode;
  constructor(code: ProtoErrorCode, message: string) {
    super(code, message);
    this.name = 'ProtoError';
  }
}

export class RingError extends OtlpEdgeError {
  declare readonly code: RingErrorCode;
  constructor(code: RingErrorCode, message: string) {
    super(code, message);
    this.name = 'RingError';
  }
}

export const ConfigErrorCodes = {
  /** The configuration file has unknown keys or invalid values; the message lists each with its key path. */
  INVALID: 'OTLPEDGE_CONFIG_INVALID',
  /** The configuration file cannot be read or is not YAML. */
  UNREADABLE: 'OTLPEDGE_CONFIG_UNREADABLE',
} as const;

export type ConfigErrorCode = (typeof ConfigErrorCodes)[keyof typeof ConfigErrorCodes];

export class ConfigError extends OtlpEdgeError {
  declare readonly code: ConfigErrorCode;
  constructor(code: ConfigErrorCode, message: string) {
    super(code, message);
    this.name = 'ConfigError';
  }
}
