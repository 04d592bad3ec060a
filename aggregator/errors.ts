/**
 * The aggregator's error catalogue: every code the node can answer or stop with, beside protocol/errors.ts (codes
 * of what the wire carries). ERRORS.md says what each means and what to do; a test keeps the two in step.
 */
export const AggregatorErrorCodes = {
  /** [400] A bad query parameter or device id. */
  API_BAD_REQUEST: 'OTLPEDGE_API_BAD_REQUEST',
  /** [401] No token, or an unknown one. */
  API_UNAUTHENTICATED: 'OTLPEDGE_API_UNAUTHENTICATED',
  /** [403] The token's role may not do this. */
  API_FORBIDDEN: 'OTLPEDGE_API_FORBIDDEN',
  /** [404] No such device in the cluster. */
  API_DEVICE_NOT_FOUND: 'OTLPEDGE_API_DEVICE_NOT_FOUND',
  /** [404] No such endpoint. */
  API_NOT_FOUND: 'OTLPEDGE_API_NOT_FOUND',
  /** [405] Method not supported on this path. */
  API_METHOD: 'OTLPEDGE_API_METHOD',
  /** [503] The state store is not open yet. */
  API_NOT_READY: 'OTLPEDGE_API_NOT_READY',
  /** [503] The member that owns the device could not be asked. */
  API_OWNER_UNREACHABLE: 'OTLPEDGE_API_OWNER_UNREACHABLE',
  /** [503] A delete reached only some members. */
  API_MEMBERS_UNREACHABLE: 'OTLPEDGE_API_MEMBERS_UNREACHABLE',
  /** [500] An unexpected error. */
  API_INTERNAL: 'OTLPEDGE_API_INTERNAL',
  /** [503] The node serves as many stream clients (or tickets) as it may. */
  API_STREAM_LIMIT: 'OTLPEDGE_API_STREAM_LIMIT',
  /** The state database has a layout this node does not read. */
  STATE_FORMAT: 'OTLPEDGE_STATE_FORMAT',
  /** auth.agent_tokens_file cannot be read. */
  AGENT_TOKENS_UNREADABLE: 'OTLPEDGE_AUTH_TOKENS_UNREADABLE',
  /** A line of auth.agent_tokens_file is malformed. */
  BAD_AGENT_TOKENS_FILE: 'OTLPEDGE_AUTH_BAD_TOKENS_FILE',
  /** auth.api_tokens_file cannot be read. */
  API_TOKENS_UNREADABLE: 'OTLPEDGE_AUTH_API_TOKENS_UNREADABLE',
  /** A line of auth.api_tokens_file is malformed. */
  BAD_API_TOKENS_FILE: 'OTLPEDGE_AUTH_BAD_API_TOKENS_FILE',
  /** node.id is not among cluster.members. */
  CLUSTER_SELF_MISSING: 'OTLPEDGE_CLUSTER_SELF_MISSING',
  /** POST /v1/cluster/leave with no other healthy member to take the devices. */
  CLUSTER_LEAVE_ALONE: 'OTLPEDGE_CLUSTER_LEAVE_ALONE',
  /** cluster.secret_file cannot be read. */
  CLUSTER_SECRET_UNREADABLE: 'OTLPEDGE_CLUSTER_SECRET_UNREADABLE',
  /** The cluster secret is too short. */
  CLUSTER_SECRET_WEAK: 'OTLPEDGE_CLUSTER_SECRET_WEAK',
} as const;

export type AggregatorErrorCode = (typeof AggregatorErrorCodes)[keyof typeof AggregatorErrorCodes];
