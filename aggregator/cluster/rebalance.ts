import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { DeviceStateStore } from '../state/store.js';
import type { ClusterMembership } from './cluster-membership.js';

/** Devices per Handoff request: small enough to keep one request well under the gRPC message limit. */
const CHUNK = 200;
/** Ownership is re-checked this often even without a ring change (a handoff that failed is tried again). */
const RECHECK_MS = 2000;
/**
 * A pass waits this long after a ring change: a batch whose owner was decided under the old ring may still be
 * landing here, and a device exported before it lands and deleted after would lose it.
 */
const SETTLE_MS = 1500;

export interface RebalanceHooks {
  onHandedOff?(devices: number): void;
  onReceived?(devices: number): void;
}

/**
 * Moves device state to its owner when the ring changes: every device this node holds but no longer owns is
 * exported, sent over Peer.Handoff to its new owner (which merges it into whatever it built meanwhile), and
 * deleted here once the owner says it is durable. A returning node gets its devices' interim state back the same
 * way, so per-device rollups and counts stay continuous and no device keeps two live owners.
 */
export class Rebalancer {
  private running: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly cluster: ClusterMembership,
    private readonly store: DeviceStateStore,
    private readonly log: Logger,
    private readonly hooks: RebalanceHooks = {},
  ) {}

  private changedAt = 0;

  start(): void {
    this.cluster.onChange(() => {
      this.changedAt = Date.now();
      setTimeout(() => this.kick(), SETTLE_MS).unref();
    });
    this.timer = setInterval(() => this.kick(), RECHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Runs a pass now, or once more after the one under way. */
  kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch((e: Error) => this.log.warn({ err: e.message }, 'rebalancing pass failed; it is tried again'))
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** A pass is under way. */
  get busy(): boolean {
    return this.running !== null;
  }

  /** Waits for the pass under way (tests, shutdown). */
  async settle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async pass(): Promise<void> {
    if (Date.now() - this.changedAt < SETTLE_MS) return; // the timer set at the change runs the pass
    const ring = this.cluster.ring;
    const self = this.cluster.self.id;
    const leaving = new Map<string, string[]>();
    let cursor: string | undefined;
    for (;;) {
      const page = this.store.list({ limit: 1000, cursor });
      for (const d of page.devices) {
        const owner = ring.owner(d.id).id;
        if (owner !== self) leaving.set(owner, [...(leaving.get(owner) ?? []), d.id]);
      }
      if (page.next === null) break;
      cursor = page.next;
    }
    for (const [owner, ids] of leaving) {
      for (let i = 0; i < ids.length; i += CHUNK) {
        // The ring moved again: start over.
        if (this.cluster.ring.version !== ring.version || Date.now() - this.changedAt < SETTLE_MS) return;
        await this.handOff(owner, ids.slice(i, i + CHUNK), ring.version);
      }
    }
  }

  private async handOff(owner: string, ids: string[], ringVersion: number): Promise<void> {
    const client = this.cluster.clientOf(owner);
    if (client === null) return;
    const states: { deviceId: string; state: Uint8Array }[] = [];
    for (const id of ids) {
      const state = await this.store.exportDevice(id);
      if (state) states.push({ deviceId: id, state });
    }
    if (states.length === 0) return;
    const reply = await new Promise<{ accepted: number }>((resolve, reject) =>
      client.Handoff(
        { fromNode: this.cluster.self.id, ringVersion, states },
        new grpc.Metadata(),
        { deadline: Date.now() + 30_000 },
        (err: grpc.ServiceError | null, res: { accepted: number }) =>
          err ? reject(new Error(`handoff to '${owner}' failed: ${err.details}`)) : resolve(res),
      ),
    );
    // The owner merged the first `accepted` states durably; only those leave this node.
    for (const s of states.slice(0, reply.accepted)) await this.store.deleteDevice(s.deviceId);
    if (reply.accepted > 0) {
      this.hooks.onHandedOff?.(reply.accepted);
      this.log.info({ to: owner, devices: reply.accepted, ringVersion }, 'device state handed off');
    }
  }

  /** Peer.Handoff on the receiving side: merge, in order, while the sender's ring is ours. */
  async receive(req: {
    fromNode: string;
    ringVersion: number;
    states?: { deviceId: string; state: Uint8Array }[];
  }): Promise<{ accepted: number }> {
    // Rings disagree: the sender retries after converging.
    if (req.ringVersion !== this.cluster.ring.version) return { accepted: 0 };
    let accepted = 0;
    for (const s of req.states ?? []) {
      await this.store.mergeDevice(s.state);
      accepted++;
    }
    if (accepted > 0) this.hooks.onReceived?.(accepted);
    return { accepted };
  }
}
