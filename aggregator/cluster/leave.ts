import type { ClusterMembership } from './cluster-membership.js';
import type { Rebalancer } from './rebalance.js';

/** What POST /v1/cluster/leave answers: how far this node is from holding nothing. */
export interface LeaveStatus {
  /** `left`: it owns no device, holds no device state and has no export request queued; it may stop now. */
  state: 'leaving' | 'left';
  /** Devices whose state is still here (handed off one chunk at a time). */
  devices: number;
  /** Export requests still queued here (delivered by this node's exporters before it counts as left). */
  export_queued: number;
}

const POLL_MS = 200;

/**
 * A node leaving the cluster for good (a scale-down: the preStop hook of its pod runs `otlp-edge-aggregator leave`):
 * it steps out of the ring, its peers take it out of theirs at the next probe, and the rebalancer hands every device
 * it holds to the new owner. It is `left` once nothing is here that the cluster still needs — its devices' state and
 * its export queue — so removing it, and its volume, loses nothing.
 */
export class Departure {
  constructor(
    private readonly cluster: ClusterMembership,
    private readonly rebalancer: Rebalancer,
    private readonly held: () => { devices: number; exportQueued: number },
  ) {}

  /** Starts leaving (once; throws when no other member could take the devices) and waits up to `waitMs` for `left`. */
  async leave(waitMs: number): Promise<LeaveStatus> {
    if (!this.cluster.leaving) {
      this.cluster.leave();
      this.rebalancer.kick();
    }
    const until = Date.now() + waitMs;
    for (;;) {
      const s = this.status();
      if (s.state === 'left' || Date.now() >= until) return s;
      await new Promise((r) => setTimeout(r, Math.min(POLL_MS, until - Date.now())));
    }
  }

  status(): LeaveStatus {
    const { devices, exportQueued } = this.held();
    const done = this.cluster.leaving && devices === 0 && exportQueued === 0 && !this.rebalancer.busy;
    return { state: done ? 'left' : 'leaving', devices, export_queued: exportQueued };
  }
}
