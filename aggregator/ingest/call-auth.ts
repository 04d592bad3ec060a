import * as grpc from '@grpc/grpc-js';
import { UPLINK_SERVICE } from '../../protocol/uplink/service.js';
import { PEER_AUTH_HEADER, type PeerRefusal, type PeerSecret } from '../cluster/peer-auth.js';
import type { AgentTokens } from './tokens.js';

const PEER_PREFIX = '/otlp_edge.peer.v1.Peer/';
const UPLINK_PREFIX = `/${UPLINK_SERVICE}/`;
const OTLP_PREFIX = '/opentelemetry.proto.collector.';

export type CallRefusal = PeerRefusal | 'agent_token';

export interface CallAuthOptions {
  /** The agent tokens in force (swapped on SIGHUP). */
  tokens: () => AgentTokens;
  /** The cluster secret; null = peers are not authenticated (development, or a single node, see `clustered`). */
  peerSecret: PeerSecret | null;
  /** False on a single node: no peer exists, so every peer call is refused. */
  clustered: boolean;
  onRefused(
    service: 'uplink' | 'otlp' | 'peer',
    reason: CallRefusal,
    detail: string,
    method: string,
    peer: string,
  ): void;
}

/**
 * Authentication of every gRPC call, decided from its metadata before its message is read or decoded (a token check
 * that runs after a 64 MiB message was taken in protects nothing):
 * - uplink `Send` and `GetRing`: a known agent token (the ring names member addresses). `Send` checks again, once
 *   decoded, that the batch's agent_id is the token's.
 * - OTLP Export services: a known token too (its name is the source's id), as OTLP/HTTP asks.
 * - peer service: a valid `x-otlp-edge-peer` signature (cluster.secret_file); on a node that is not in a cluster
 *   every peer call is refused.
 * A refused call is answered UNAUTHENTICATED (PERMISSION_DENIED for peer calls to a single node) and counted.
 */
export function callAuthInterceptor(opts: CallAuthOptions): grpc.ServerInterceptor {
  return (method, call) => {
    const path = method.path;
    const check = (md: grpc.Metadata): { code: grpc.status; details: string } | null => {
      if (path.startsWith(PEER_PREFIX)) {
        if (!opts.clustered) {
          opts.onRefused('peer', 'not_clustered', 'not in a cluster', path, call.getPeer());
          return {
            code: grpc.status.PERMISSION_DENIED,
            details:
              'this node is not in a cluster (cluster.members and cluster.dns are empty): it answers no peer calls',
          };
        }
        if (opts.peerSecret === null) return null;
        const header = md.get(PEER_AUTH_HEADER)[0];
        const bad = opts.peerSecret.verify(typeof header === 'string' ? header : undefined, path);
        if (bad === null) return null;
        opts.onRefused('peer', bad.refusal, bad.detail, path, call.getPeer());
        return { code: grpc.status.UNAUTHENTICATED, details: bad.detail };
      }
      const otlp = path.startsWith(OTLP_PREFIX);
      if (otlp || path.startsWith(UPLINK_PREFIX)) {
        const auth = md.get('authorization')[0];
        const r = opts.tokens().agentOf(typeof auth === 'string' ? auth : undefined);
        if ('agent' in r) return null;
        opts.onRefused(otlp ? 'otlp' : 'uplink', 'agent_token', r.refused, path, call.getPeer());
        return { code: grpc.status.UNAUTHENTICATED, details: r.refused };
      }
      return null;
    };
    return new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(md, mdNext) {
            const refused = check(md);
            if (refused === null) mdNext(md);
            else call.sendStatus({ ...refused, metadata: new grpc.Metadata() });
          },
        });
      },
    });
  };
}
