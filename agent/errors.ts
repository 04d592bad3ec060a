/**
 * The agent's error catalogue beside protocol/errors.ts (payloads, topics) and receiver/auth-errors.ts (device
 * authentication): the codes of the agent's own tools and failures. ERRORS.md says what to do about each.
 */
export const AgentErrorCodes = {
  /** The agent failed while decoding a message (reported to the device). */
  INTERNAL: 'OTLPEDGE_AGENT_INTERNAL',
  /** `buffer stats|dump` found the buffer held by a running agent. */
  BUFFER_LOCKED: 'OTLPEDGE_AGENT_BUFFER_LOCKED',
  /** The buffer on disk has a layout this agent does not read. */
  BUFFER_FORMAT: 'OTLPEDGE_AGENT_BUFFER_FORMAT',
  /** `buffer stats|dump` cannot open the buffer. */
  BUFFER_UNREADABLE: 'OTLPEDGE_AGENT_BUFFER_UNREADABLE',
  /** A device published more than mqtt.broker.max_publish_rate (reported on its errors topic). */
  RATE_LIMITED: 'OTLPEDGE_AGENT_RATE_LIMITED',
} as const;
