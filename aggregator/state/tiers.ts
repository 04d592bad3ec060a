import { HEAD, HEAD_MINUTE, SLOT, type Device } from '../device/device-record.js';
import {
  clearBucket,
  copyBucket,
  mergeBucket,
  minuteOfKey,
  newBucket,
  parseRollupKey,
  readBucket,
  rollupKey,
  rollupRange,
  tierPrefix,
} from '../device/rollups.js';
import type { Committer } from './commit.js';
import type { Db } from './db.js';
import { readBuckets } from './reads.js';
import type { TransferBucket } from './transfer.js';

/**
 * Tiered retention of rollups. 1-minute buckets are kept `devices.rollup_retention`; as they expire they are merged
 * into 1-hour buckets (kept `devices.hourly_retention`), which as they expire are merged into 1-day buckets (kept
 * `devices.daily_retention`), which then go. A tier switched off (retention 0) is skipped: what expires goes to the
 * next one on. Every point is in exactly one bucket at any time (merging one in and deleting it share a write), so
 * a period's answer is the merge of what each tier holds of it.
 *
 * Compaction runs with prune, in chunks of PRUNE_CHUNK keys, one write each — the same bounded I/O as the prune it
 * replaces. Merges commute, so a bucket rolled into a period that already holds others is exact.
 */

/** A coarser tier: its resolution and how long its buckets are kept. */
export interface Tier {
  resolutionMin: number;
  retentionMs: number;
}

/** Where a store's buckets are: its database, the writes under way, the tiers it keeps. */
export interface TierSource {
  db: Db;
  commit: Committer;
  tiers: readonly Tier[];
}

/** [fromMs, toMs) as whole minutes [fromMin, toMin). */
export const minuteRange = (fromMs: number, toMs: number): [number, number] => [
  Math.max(0, Math.floor(fromMs / MINUTE_MS)),
  Math.min(2 ** 48 - 1, Math.ceil(toMs / MINUTE_MS)),
];

/** Expired keys handled per write. */
const PRUNE_CHUNK = 10_000;
const MINUTE_MS = 60_000;

const periodOf = (minute: number, resolutionMin: number) => Math.floor(minute / resolutionMin) * resolutionMin;

/**
 * Rolls expired buckets down the tiers as of `nowMs` and deletes what the last tier lets go; resolves with how many
 * buckets left their tier, once durable.
 */
export async function compactTiers(
  db: Db,
  commit: Committer,
  devices: Iterable<Device>,
  nowMs: number,
  minuteRetentionMs: number,
  tiers: readonly Tier[],
  stop: () => boolean,
): Promise<number> {
  const levels = [{ resolutionMin: 1, retentionMs: minuteRetentionMs }, ...tiers];
  let n = 0;
  // Heads in device records whose minute expired (a device silent for the whole retention).
  const cutoff0 = Math.floor((nowMs - minuteRetentionMs) / MINUTE_MS);
  const next0 = levels[1];
  for (const dev of devices) {
    const m = dev.m;
    for (let slot = 0; slot < dev.shape.length; slot++) {
      const o = slot * SLOT;
      const minute = m[o + HEAD_MINUTE];
      if (minute === -Infinity || minute >= cutoff0) continue;
      if (next0 !== undefined) {
        const key = rollupKey(
          dev.id,
          dev.shape.name(slot),
          periodOf(minute, next0.resolutionMin),
          tierPrefix(next0.resolutionMin),
        );
        mergeBucket(commit.bucketFor(key), copyBucket(m, o + HEAD));
      }
      m[o + HEAD_MINUTE] = -Infinity;
      clearBucket(m, o + HEAD);
      commit.pending.devices.add(dev);
      n++;
    }
  }
  for (let i = 0; i < levels.length && !stop(); i++) {
    const { resolutionMin, retentionMs } = levels[i];
    const cutoff = Math.floor((nowMs - retentionMs) / MINUTE_MS);
    const next = levels[i + 1];
    const prefix = tierPrefix(resolutionMin);
    n += await rollLevel(db, commit, prefix, resolutionMin, cutoff, next, stop);
  }
  return n;
}

/** One tier's expired buckets (period ended by `cutoff`) merged into `next` (or dropped) and deleted. */
async function rollLevel(
  db: Db,
  commit: Committer,
  prefix: string,
  resolutionMin: number,
  cutoff: number,
  next: Tier | undefined,
  stop: () => boolean,
): Promise<number> {
  let n = 0;
  let chunk: [string, Float64Array][] = [];
  const flush = async () => {
    const g = commit.pending;
    for (const [key, b] of chunk) {
      // A bucket with a change not written yet (a late point) is left for the next pass: it is not all here.
      if (g.buckets.has(key)) continue;
      if (next !== undefined) {
        const { device, metric, minute } = parseRollupKey(key);
        const into = rollupKey(device, metric, periodOf(minute, next.resolutionMin), tierPrefix(next.resolutionMin));
        mergeBucket(commit.bucketFor(into), b);
      }
      commit.deleteStored([key]);
      commit.cold.delete(key); // a copy kept after its last write would bring it back in answers
      n++;
    }
    chunk = [];
    await commit.barrier();
  };
  const it = db.iterator({ gte: prefix, lt: `${prefix.slice(0, -1)};` });
  try {
    for (let e = await it.next(); e !== undefined && !stop(); e = await it.next()) {
      const [k, v] = e;
      if (minuteOfKey(k) + resolutionMin > cutoff) {
        it.seek(`${k.slice(0, k.length - 13)}\u0001`); // past this series' remaining buckets
        continue;
      }
      chunk.push([k, readBucket(new DataView(v.buffer, v.byteOffset, v.byteLength), 0)]);
      if (chunk.length >= PRUNE_CHUNK) await flush();
    }
  } finally {
    await it.close();
  }
  await flush();
  return n;
}

/** A device's keys in every tier (1-minute buckets and each coarser tier's), as key ranges. */
export function bucketRanges(id: string, tiers: readonly Tier[]): { gte: string; lt: string }[] {
  return ['r:', ...tiers.map((t) => tierPrefix(t.resolutionMin))].map((p) => rollupRange(id, undefined, p));
}

/**
 * Merges a handed-off device's buckets of coarser tiers into this node's tier of that resolution, or the next
 * coarser one it keeps (none: they are not kept). 1-minute buckets are the caller's (they may join the record).
 */
export function mergeTierBuckets(
  commit: Committer,
  id: string,
  buckets: TransferBucket[],
  tiers: readonly Tier[],
): void {
  for (const x of buckets) {
    const res = x.resolutionMin ?? 1;
    const into = res === 1 ? undefined : tiers.find((t) => t.resolutionMin >= res);
    if (into === undefined) continue;
    const key = rollupKey(id, x.metric, periodOf(x.minute, into.resolutionMin), tierPrefix(into.resolutionMin));
    mergeBucket(commit.bucketFor(key), x.b);
  }
}

/** The resolutions a series can be answered at, finest first: 1 (minutes) and each tier's. */
export function resolutions(tiers: readonly Tier[]): number[] {
  return [1, ...tiers.map((t) => t.resolutionMin)];
}

/** Points one series answer holds at most (as Prometheus' 11,000 per series): a longer range is answered coarser. */
export const MAX_SERIES_POINTS = 11_000;

/**
 * The resolution a series over [fromMin, toMin) is answered at: the finest at which the answer is whole — as coarse
 * as the coarsest tier holding any of the metric's buckets in the range (finer ones cannot split them) — and at
 * least `atLeastMin`, and coarse enough for at most MAX_SERIES_POINTS points.
 */
export async function resolutionFor(
  { db, commit, tiers }: TierSource,
  id: string,
  metric: string,
  [fromMin, toMin]: [number, number],
  atLeastMin = 1,
): Promise<number> {
  const all = resolutions(tiers);
  let floor = Math.max(atLeastMin, 1);
  while (floor < all[all.length - 1] && (toMin - fromMin) / floor > MAX_SERIES_POINTS)
    floor = all.find((r) => r > floor) ?? floor;
  for (const res of [...all].reverse()) {
    if (res <= floor) break;
    // A bucket of this tier overlaps the range when its period starts before toMin and ends after fromMin.
    const range = {
      gte: rollupKey(id, metric, Math.max(0, fromMin - res + 1), tierPrefix(res)),
      lt: rollupKey(id, metric, toMin, tierPrefix(res)),
    };
    if (commit.overlay(range.gte, range.lt, 0, Infinity).size > 0) return res;
    for await (const _ of db.keys({ ...range, limit: 1 })) return res;
  }
  return all.find((r) => r >= floor) ?? all[all.length - 1];
}

/**
 * A metric's buckets over [fromMin, toMin) at `resolutionMin`: every finer tier's buckets of those periods merged
 * into one bucket per period, oldest first. Periods are whole: the range is widened to period bounds.
 */
export async function readAtResolution(
  { db, commit, tiers }: TierSource,
  dev: Device | undefined,
  id: string,
  metric: string,
  [fromMin, toMin]: [number, number],
  resolutionMin: number,
): Promise<{ minute: number; b: Float64Array }[]> {
  const from = periodOf(fromMin, resolutionMin);
  const to = Math.ceil(toMin / resolutionMin) * resolutionMin;
  const periods = new Map<number, Float64Array>();
  for (const res of resolutions(tiers).filter((r) => r <= resolutionMin)) {
    const found = await readBuckets(db, commit, res === 1 ? dev : undefined, id, metric, from, to, tierPrefix(res));
    for (const x of found) {
      const p = periodOf(x.minute, resolutionMin);
      let b = periods.get(p);
      if (b === undefined) periods.set(p, (b = newBucket()));
      mergeBucket(b, x.b);
    }
  }
  return [...periods].sort((a, b) => a[0] - b[0]).map(([minute, b]) => ({ minute, b }));
}

/** Every tier bucket of a device (for handing it to another node), each with its resolution. */
export async function readTierBuckets(
  db: Db,
  commit: Committer,
  id: string,
  tiers: readonly Tier[],
): Promise<TransferBucket[]> {
  const out: TransferBucket[] = [];
  for (const t of tiers) {
    const found = await readBuckets(db, commit, undefined, id, undefined, 0, 2 ** 48 - 1, tierPrefix(t.resolutionMin));
    for (const x of found) out.push({ ...x, resolutionMin: t.resolutionMin });
  }
  return out;
}
