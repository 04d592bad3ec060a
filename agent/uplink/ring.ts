import type { Logger } from 'pino';
import { isValidId } from '../../protocol/ids.js';
import { HashRing, isValidAddress } from '../../protocol/ring/ring.js';
import type { RingInfo } from '../../protocol/uplink/messages.js';

/** Refreshes are spaced at least this far apart, however many acks report a newer ring. */
const MIN_REFRESH_MS = 1000;

/**
 * The aggregators' ring as the agent knows it (uplink GetRing from a seed endpoint), so each commit can store one
 * batch per owner and send it straight there. The agent computes owners with the same ring code and member list
 * as the nodes, so it agrees with them whenever its version equals theirs; an ack carrying another version
 * triggers a refresh. Batches stored under an old ring keep their old route: the node they reach forwards what it
 * does not own.
 */
export class AgentRing {
  private ring: HashRing | null = null;
  private refreshing: Promise<void> | null = null;
  private lastRefresh = 0;

  constructor(
    private readonly fetchRing: () => Promise<RingInfo | null>,
    private readonly log: Logger,
  ) {}

  get version(): number {
    return this.ring?.version ?? 0;
  }

  /** The owner's address for `deviceId`, or '' while no multi-member ring is known (send to any seed). */
  routeOf(deviceId: string): string {
    const r = this.ring;
    return r !== null && r.size > 1 ? r.owner(deviceId).address : '';
  }

  /** An aggregator answered with ring `version`: refresh when it differs from ours. */
  noteVersion(version: number): void {
    if (version !== 0 && version !== this.version && Date.now() - this.lastRefresh >= MIN_REFRESH_MS)
      void this.refresh();
  }

  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      this.lastRefresh = Date.now();
      try {
        const info = await this.fetchRing();
        if (info === null || info.members.length === 0) return;
        // A ring from the wire is checked before it routes anything: a bad address would make every commit fail.
        const bad = info.members.find((m) => !isValidAddress(m.address) || !isValidId(m.id));
        if (bad) {
          this.log.error(
            { member: String(bad.id).slice(0, 140), address: String(bad.address).slice(0, 300) },
            'the aggregator ring names a member with an invalid id or address (HOST:PORT, at most 255 bytes); keeping the previous ring',
          );
          return;
        }
        const next = new HashRing(
          info.members.filter((m) => m.healthy).map((m) => ({ id: m.id, address: m.address })),
          info.vnodes || undefined,
        );
        if (next.version !== this.version) {
          this.log.info(
            { version: next.version, members: next.members.map((m) => `${m.id}=${m.address}`) },
            'aggregator ring learned',
          );
          if (info.version !== 0 && next.version !== info.version) {
            this.log.warn(
              { ours: next.version, theirs: info.version },
              "ring version computed here differs from the aggregator's; routing may need forwarding",
            );
          }
        }
        this.ring = next;
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'could not fetch the aggregator ring; sending to seed endpoints');
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }
}
