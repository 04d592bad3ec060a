/**
 * Which OTLP request a batch holds. One representation everywhere: the agent's stored records (one byte), the uplink
 * and peer messages (uplink.proto `Signal`, same numbers), the aggregator's decoder.
 */
export enum Signal {
  UNSPECIFIED = 0,
  METRICS = 1,
  LOGS = 2,
}
