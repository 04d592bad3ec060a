import * as grpc from '@grpc/grpc-js';

/** A sentence an operator can act on for the failures they will meet. */
export function explain(err: grpc.ServiceError): string {
  switch (err.code) {
    case grpc.status.UNAUTHENTICATED:
      return `the aggregator refused the agent's token (${err.details}); check uplink.token and the aggregator's auth.agent_tokens_file`;
    case grpc.status.PERMISSION_DENIED:
      return `the aggregator denied this agent (${err.details})`;
    case grpc.status.UNAVAILABLE:
      return `aggregator unavailable (${err.details}); is it running, and do uplink.tls settings match its TLS?`;
    case grpc.status.DEADLINE_EXCEEDED:
      return 'the aggregator did not answer in time';
    case grpc.status.UNIMPLEMENTED:
      return `the endpoint does not serve the otlp-edge uplink (${err.details}); check uplink.endpoints (an aggregator's gRPC port) and uplink.protocol`;
    case grpc.status.FAILED_PRECONDITION:
      return `the aggregator cannot take batches yet (${err.details}); the batch is kept and retried`;
    default:
      return `${grpc.status[err.code] ?? err.code}: ${err.details}`;
  }
}
