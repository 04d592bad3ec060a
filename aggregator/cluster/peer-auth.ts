import { AggregatorErrorCodes } from '../errors.js';
import * as grpc from '@grpc/grpc-js';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { OtlpEdgeError } from '../../protocol/errors.js';

/**
 * Peer authentication: every member of a cluster reads the same secret (`cluster.secret_file`) and signs each peer
 * call with it. The secret itself never travels: a call carries
 *
 *     x-otlp-edge-peer: v1 <node-id> <unix-ms> <hex HMAC-SHA256(secret, "v1\n<method path>\n<node-id>\n<unix-ms>")>
 *
 * and the receiver recomputes the MAC (constant-time compare) and accepts it within ±CLOCK_SKEW_MS of its own clock.
 * Binding the method path means a captured Probe signature cannot be replayed as a Forward or Handoff; a replay of
 * the same call within the window is harmless (forwarded parts and handoffs are applied once, see peer.proto).
 * Over plaintext gRPC an eavesdropper still sees the traffic; with `tls.enabled` peer channels use TLS too.
 */

export const PEER_AUTH_HEADER = 'x-otlp-edge-peer';
/** How far apart two members' clocks may be; a larger skew refuses calls and the log says by how much. */
export const CLOCK_SKEW_MS = 5 * 60_000;
/** Shortest secret accepted: 16 bytes (128 bits) once trimmed. */
const MIN_SECRET_BYTES = 16;

export type PeerRefusal = 'missing' | 'malformed' | 'bad_signature' | 'clock_skew' | 'not_clustered';

export class PeerSecret {
  private constructor(private readonly key: Buffer) {}

  /** Reads and checks `cluster.secret_file` (trailing newline ignored). Throws OtlpEdgeError naming the key. */
  static load(path: string): PeerSecret {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new OtlpEdgeError(
        AggregatorErrorCodes.CLUSTER_SECRET_UNREADABLE,
        `cannot read cluster.secret_file ${path}: ${(e as Error).message}`,
      );
    }
    return PeerSecret.of(text.trim(), `cluster.secret_file ${path}`);
  }

  static of(secret: string, what = 'cluster secret'): PeerSecret {
    const key = Buffer.from(secret, 'utf8');
    if (key.length < MIN_SECRET_BYTES) {
      throw new OtlpEdgeError(
        AggregatorErrorCodes.CLUSTER_SECRET_WEAK,
        `${what} holds ${key.length} bytes; expected at least ${MIN_SECRET_BYTES} (e.g. \`openssl rand -hex 32\`), the same on every member`,
      );
    }
    return new PeerSecret(key);
  }

  private mac(path: string, nodeId: string, ms: string): Buffer {
    return createHmac('sha256', this.key).update(`v1\n${path}\n${nodeId}\n${ms}`).digest();
  }

  /** The header value for one call of `path` from `nodeId`. */
  sign(path: string, nodeId: string, now = Date.now()): string {
    const ms = String(now);
    return `v1 ${nodeId} ${ms} ${this.mac(path, nodeId, ms).toString('hex')}`;
  }

  /** null when `header` is a valid signature of a call of `path`, else why not. */
  verify(header: string | undefined, path: string, now = Date.now()): { refusal: PeerRefusal; detail: string } | null {
    if (header === undefined || header === '')
      return {
        refusal: 'missing',
        detail: `no ${PEER_AUTH_HEADER} credential (is cluster.secret_file set on the calling node?)`,
      };
    const parts = header.split(' ');
    if (parts.length !== 4 || parts[0] !== 'v1' || !/^\d{1,15}$/.test(parts[2]) || !/^[0-9a-f]{64}$/.test(parts[3])) {
      return { refusal: 'malformed', detail: `malformed ${PEER_AUTH_HEADER} credential` };
    }
    const [, nodeId, ms, hex] = parts;
    if (!timingSafeEqual(this.mac(path, nodeId, ms), Buffer.from(hex, 'hex'))) {
      return {
        refusal: 'bad_signature',
        detail: `peer credential of '${nodeId.slice(0, 128)}' does not match this node's cluster.secret_file`,
      };
    }
    const skew = now - Number(ms);
    if (Math.abs(skew) > CLOCK_SKEW_MS) {
      return {
        refusal: 'clock_skew',
        detail: `peer '${nodeId}' signed its call ${Math.round(skew / 1000)} s away from this node's clock (more than ${CLOCK_SKEW_MS / 1000} s): synchronise the members' clocks (NTP)`,
      };
    }
    return null;
  }
}

/** A client interceptor that signs every call on a peer channel. */
export function peerClientInterceptor(secret: PeerSecret, selfId: string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set(PEER_AUTH_HEADER, secret.sign(options.method_definition.path, selfId));
        next(metadata, listener);
      },
    });
}
