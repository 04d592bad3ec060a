import * as grpc from '@grpc/grpc-js';
import { otlpGrpcPath, Signal } from '../../protocol/otlp/signal.js';
import { encodePartialSuccess, encodeRpcStatus } from '../../protocol/otlp/rpc-status.js';
import { OtlpRefusal, type OtlpIngest } from './otlp-ingest.js';
import type { AgentTokens } from './tokens.js';

const pass = (b: Buffer) => b;

/** The OTLP/gRPC services (metrics, logs, traces) on the node's gRPC port, each with its one Export method. */
export const OTLP_GRPC_SIGNALS = [Signal.METRICS, Signal.LOGS, Signal.TRACES] as const;

export function otlpServiceDefinition(signal: Signal): grpc.ServiceDefinition {
  return {
    Export: {
      path: otlpGrpcPath(signal),
      requestStream: false,
      responseStream: false,
      requestSerialize: pass,
      requestDeserialize: pass,
      responseSerialize: pass,
      responseDeserialize: pass,
    },
  } as grpc.ServiceDefinition;
}

/**
 * The Export handler of one signal: the request bytes go to OtlpIngest as they arrived (gRPC has inflated them;
 * grpc.max_receive_message_length bounds them). Bad data is INVALID_ARGUMENT; overload and storage trouble are
 * UNAVAILABLE with a google.rpc.RetryInfo in `grpc-status-details-bin`, as the OTLP specification asks. The caller
 * was authenticated by the call interceptor (call-auth.ts) before the message was read.
 */
export function otlpExportHandler(
  signal: Signal,
  ingest: OtlpIngest,
  tokens: () => AgentTokens,
  onRequest: (signal: string, outcome: string) => void,
): grpc.UntypedServiceImplementation {
  const name = Signal[signal].toLowerCase();
  return {
    Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const who = tokens().agentOf(call.metadata.get('authorization')[0] as string | undefined);
      const source = 'agent' in who ? who.agent : '';
      ingest.accept(source, signal, call.request).then(
        ({ rejected, message }) => {
          onRequest(name, 'ok');
          cb(null, Buffer.from(encodePartialSuccess(rejected, message)));
        },
        (e: Error) => {
          const code =
            e instanceof OtlpRefusal && e.kind === 'bad_data' ? grpc.status.INVALID_ARGUMENT : grpc.status.UNAVAILABLE;
          onRequest(name, grpc.status[code].toLowerCase());
          const metadata = new grpc.Metadata();
          const retry = e instanceof OtlpRefusal && e.retryAfterMs > 0 ? e.retryAfterMs : undefined;
          if (code === grpc.status.UNAVAILABLE)
            metadata.set('grpc-status-details-bin', Buffer.from(encodeRpcStatus(code, e.message, retry ?? 1000)));
          cb({ code, details: e.message, metadata });
        },
      );
    },
  };
}
