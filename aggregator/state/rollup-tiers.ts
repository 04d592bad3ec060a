import type { Device } from '../device/device-record.js';
import { rollupPoint } from '../device/rollups.js';
import type { RollupPoint } from '../device/types.js';
import { compactTiers, minuteRange, readAtResolution, resolutionFor, type TierSource } from './tiers.js';

/**
 * A store's rollups as the API and the node's housekeeping use them: series at a resolution, the resolution a range
 * is answered at, and compaction down the tiers (one at a time; handoffs wait it out). The mechanics are tiers.ts.
 */
export class StoreRollups {
  private compacting: Promise<number> | null = null;

  constructor(
    private readonly s: {
      /** Where the buckets are now (the database changes when the store reopens it). */
      source(): TierSource;
      /** Resolves when the store can be read (not while it reopens its database). */
      ready(): Promise<void>;
      device(id: string): Device | undefined;
      devices(): Iterable<Device>;
      closed(): boolean;
      /** `devices.rollup_retention`: how long 1-minute buckets stay. */
      minuteRetentionMs: number;
    },
  ) {}

  /**
   * One metric's rollups overlapping [fromMs, toMs) at `resolutionMin` (1: minutes; a tier's: every finer bucket of
   * each period merged in), oldest first.
   */
  async series(id: string, metric: string, fromMs: number, toMs: number, resolutionMin = 1): Promise<RollupPoint[]> {
    const range = minuteRange(fromMs, toMs);
    if (!(range[1] > range[0]) || this.s.device(id) === undefined) return [];
    await this.s.ready();
    const at = await readAtResolution(this.s.source(), this.s.device(id), id, metric, range, resolutionMin);
    return at.map((x) => rollupPoint(x.minute, x.b));
  }

  /** The resolution (minutes per point) a series over [fromMs, toMs) is answered at (tiers.ts resolutionFor). */
  async resolutionFor(id: string, metric: string, fromMs: number, toMs: number, atLeastMin = 1): Promise<number> {
    await this.s.ready();
    return resolutionFor(this.s.source(), id, metric, minuteRange(fromMs, toMs), atLeastMin);
  }

  /**
   * Rolls buckets expired as of `nowMs` down the tiers and deletes what the last lets go; resolves with how many
   * buckets left their tier, once durable. A call while one runs joins it.
   */
  compact(nowMs: number): Promise<number> {
    this.compacting ??= this.s
      .ready()
      .then(() => {
        const { db, commit, tiers } = this.s.source();
        const devices = this.s.devices();
        return compactTiers(db, commit, devices, nowMs, this.s.minuteRetentionMs, tiers, () => this.s.closed());
      })
      .finally(() => (this.compacting = null));
    return this.compacting;
  }

  /** Resolves when no compaction runs (a handoff must not read a bucket while it moves between tiers). */
  async settled(): Promise<void> {
    await this.compacting?.catch(() => undefined);
  }
}
