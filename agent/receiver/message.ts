/** One MQTT message as a receiver (embedded broker or broker client) hands it to the pipeline. */
export interface InboundMessage {
  topic: string;
  payload: Uint8Array;
  qos: 0 | 1 | 2;
  /** MQTT 5 content-type, when the message carried one. */
  contentType?: string;
  /** MQTT 5 user properties, in the order sent (a key may repeat). */
  userProperties?: [string, string][];
}

/**
 * Why a message was refused for good, for a receiver that can tell its sender (an MQTT 5 PUBACK reason code):
 * `payload_format_invalid` (0x99) for a payload that does not decode, `topic_name_invalid` (0x90) for a topic with no
 * valid device id in it. `message` says what was wrong, as the device's errors topic does.
 */
export interface Refusal {
  kind: 'payload_format_invalid' | 'topic_name_invalid';
  message: string;
}

/**
 * Called once the message is settled: with no error when it may be acknowledged (stored durably, or refused for
 * good, then with the refusal), with an error when it must not be (the sender will deliver it again).
 */
export type Settled = (err?: Error, refusal?: Refusal) => void;
