import { HashRing } from '../../protocol/ring/ring.js';
import type { RingInfo } from '../../protocol/uplink/messages.js';

/** The ring as GET /v1/ring shows it: each member, whether it answers, and the share of devices it owns. */
export interface RingView {
  version: number;
  vnodes: number;
  /** `leaving`: a member handing its devices off before it stops (it owns nothing). */
  members: { id: string; address: string; healthy: boolean; share: number; leaving?: boolean }[];
}

/**
 * Who owns which device. `SingleNode` owns everything; `ClusterMembership` (cluster-membership.ts) fills the same
 * seam with a consistent-hash ring over healthy members, so ingest and the API never ask how ownership is decided.
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

export class SingleNode implements Membership {
  private readonly ring: HashRing;

  constructor(
    readonly self: { id: string; address: string },
    vnodes: number,
  ) {
    this.ring = new HashRing([self], vnodes);
  }

  owner(_deviceId: string): string {
    return this.self.id;
  }

  ringInfo(): RingInfo {
    return { version: this.ring.version, vnodes: this.ring.vnodes, members: [{ ...this.self, healthy: true }] };
  }

  view(): RingView {
    return {
      version: this.ring.version,
      vnodes: this.ring.vnodes,
      members: [{ ...this.self, healthy: true, share: 1 }],
    };
  }
}
