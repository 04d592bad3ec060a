import type { RingInfo } from '../../protocol/uplink/messages.js';
import type { RingView } from '../api/server.js';

/**
 * Who owns which device. One node owns everything for now; the cluster (static members, DNS, health) fills the same
 * seam with a consistent-hash ring, so ingest and the API never ask how ownership is decided.
 */
export interface Membership {
  readonly self: { id: string; address: string };
  /** The member id that owns `deviceId`. */
  owner(deviceId: string): string;
  /** The ring as agents see it (uplink acks, GetRing). */
  ringInfo(): RingInfo;
  /** The ring as /v1/ring shows it. */
  view(): RingView;
}

/** 32-bit FNV-1a of the member set: equal memberships give equal versions in every process. */
function versionOf(members: { id: string; address: string }[]): number {
  let h = 0x811c9dc5;
  for (const m of [...members].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const s = `${m.id}=${m.address};`;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h || 1;
}

export class SingleNode implements Membership {
  private readonly version: number;

  constructor(readonly self: { id: string; address: string }, private readonly vnodes: number) {
    this.version = versionOf([self]);
  }

  owner(_deviceId: string): string {
    return this.self.id;
  }

  ringInfo(): RingInfo {
    return { version: this.version, vnodes: this.vnodes, members: [{ ...this.self, healthy: true }] };
  }

  view(): RingView {
    return { version: this.version, vnodes: this.vnodes, members: [{ ...this.self, healthy: true, share: 1 }] };
  }
}
