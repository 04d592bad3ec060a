import type { Client } from 'aedes';

/**
 * What a connection says about who is on the other end, before any password: its remote address (for login
 * throttling) and a verified TLS client certificate's CN. Kept apart from the authorizer's rules (auth.ts).
 */

/** Failed password logins from one address within LOGIN_WINDOW_MS after which it is refused unchecked. */
export const LOGIN_FAILURES_MAX = 20;
export const LOGIN_WINDOW_MS = 10_000;
/** Addresses tracked at once; the table starts over when full (bounded memory under a spoofed flood). */
const LOGIN_ADDRESSES_MAX = 10_000;

/** Failed logins per source address, in fixed windows. */
export class LoginFailures {
  private readonly byAddress = new Map<string, { start: number; n: number }>();

  note(address: string): void {
    const now = Date.now();
    let w = this.byAddress.get(address);
    if (w === undefined || now - w.start >= LOGIN_WINDOW_MS) {
      if (this.byAddress.size >= LOGIN_ADDRESSES_MAX) this.byAddress.clear();
      this.byAddress.set(address, (w = { start: now, n: 0 }));
    }
    w.n++;
  }

  /** The time until which `address` is refused unchecked, or 0. */
  blockedUntil(address: string): number {
    const w = this.byAddress.get(address);
    if (w === undefined || w.n < LOGIN_FAILURES_MAX) return 0;
    const until = w.start + LOGIN_WINDOW_MS;
    return until > Date.now() ? until : 0;
  }
}

/** The remote address of a client's connection (TCP/TLS socket, or the HTTP socket under a WebSocket). */
export function remoteAddressOf(client: Client): string {
  const c = client as unknown as { conn?: { remoteAddress?: unknown }; req?: { socket?: { remoteAddress?: unknown } } };
  const a = c.conn?.remoteAddress ?? c.req?.socket?.remoteAddress;
  return typeof a === 'string' ? a : 'unknown';
}

interface PeerSocket {
  authorized?: boolean;
  authorizationError?: unknown;
  getPeerCertificate?: () => { subject?: { CN?: unknown } } | null;
}

/**
 * The CN of the client certificate if the TLS layer verified it against the configured CA. aedes v1 hands our hook
 * the raw connection: a TLSSocket for mqtts, or (WebSocket over TLS) a stream whose request socket is one.
 */
export function verifiedPeerCN(client: Client | null | undefined): {
  verified: boolean;
  cn?: unknown;
  problem?: string;
} {
  const candidates = [
    (client as { conn?: unknown } | null)?.conn,
    (client as { req?: { socket?: unknown } } | null)?.req?.socket,
  ];
  for (const s of candidates) {
    const sock = s as PeerSocket | null | undefined;
    if (!sock || typeof sock.getPeerCertificate !== 'function') continue;
    let cert: { subject?: { CN?: unknown } } | null;
    try {
      cert = sock.getPeerCertificate();
    } catch {
      cert = null;
    }
    const presented = cert !== null && typeof cert === 'object' && Object.keys(cert).length > 0;
    if (!presented) return { verified: false, problem: 'the TLS client sent no certificate' };
    if (sock.authorized !== true)
      return { verified: false, problem: `client certificate not verified: ${String(sock.authorizationError)}` };
    return { verified: true, cn: cert?.subject?.CN };
  }
  return { verified: false };
}
