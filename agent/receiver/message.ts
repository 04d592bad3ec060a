/** One MQTT message as a receiver (embedded broker or broker client) hands it to the pipeline. */
export interface InboundMessage {
  topic: string;
  payload: Uint8Array;
  qos: 0 | 1 | 2;
  /** MQTT 5 content-type, when the message carried one. */
  contentType?: string;
}

/**
 * Called once the message is settled: with no error when it may be acknowledged (stored durably, or rejected for
 * good), with an error when it must not be (the sender will deliver it again).
 */
export type Settled = (err?: Error) => void;
