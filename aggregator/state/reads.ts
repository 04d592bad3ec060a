import type { ClassicLevel } from 'classic-level';
import type { Committer } from './commit.js';
import { SourceDedup } from '../device/dedup.js';
import { Device, HEAD, HEAD_MINUTE, SLOT } from '../device/device-record.js';
import {
  clearBucket,
  copyBucket,
  mergeBucket,
  minuteOfKey,
  parseRollupKey,
  readBucket,
  rollupKey,
  rollupRange,
} from '../device/rollups.js';
import type { TransferBucket } from './transfer.js';

/** The state store's reads of what LevelDB holds (layout in db.ts): loading, bucket queries, pruning. */

type Db = ClassicLevel<string, Uint8Array>;

/** Expired buckets deleted per write while pruning. */
const PRUNE_CHUNK = 10_000;

/** Every device record and dedup record. */
export async function loadState(
  db: Db,
): Promise<{ devices: Map<string, Device>; sources: Map<string, SourceDedup>; merged: Map<string, number[]> }> {
  const devices = new Map<string, Device>();
  const sources = new Map<string, SourceDedup>();
  const merged = new Map<string, number[]>();
  await scan(db, 's:', 's;', (k, v) => devices.set(k.slice(2), Device.decode(k.slice(2), v)));
  await scan(db, 'd:', 'd;', (k, v) => sources.set(k.slice(2), SourceDedup.decode(v)));
  await scan(db, 'h:', 'h;', (k, v) => {
    const view = new DataView(v.buffer, v.byteOffset, v.byteLength);
    merged.set(
      k.slice(2),
      Array.from({ length: v.length >> 3 }, (_, i) => view.getFloat64(8 * i, true)),
    );
  });
  return { devices, sources, merged };
}

/**
 * A device's buckets (one metric's, or all) with minute in [fromMin, toMin), ordered by metric then minute:
 * LevelDB's, overlaid with what memory holds that is newer, plus the heads of `dev` when given. Memory is copied and
 * the LevelDB snapshot taken before the first await, so the answer is one consistent moment.
 */
export async function readBuckets(
  db: Db,
  commit: Committer,
  dev: Device | undefined,
  id: string,
  metric: string | undefined,
  fromMin: number,
  toMin: number,
): Promise<TransferBucket[]> {
  const range = rollupRange(id, metric);
  const overlay = commit.overlay(range.gte, range.lt, fromMin, toMin);
  const heads: [string, Float64Array][] = [];
  if (dev !== undefined) {
    dev.shape.names.forEach((name, i) => {
      const o = i * SLOT;
      const minute = dev.m[o + HEAD_MINUTE];
      if ((metric === undefined || name === metric) && minute >= fromMin && minute < toMin)
        heads.push([rollupKey(id, name, minute), copyBucket(dev.m, o + HEAD)]);
    });
  }
  const found = new Map<string, Float64Array>();
  const it = db.iterator(
    metric === undefined ? range : { gte: rollupKey(id, metric, fromMin), lt: rollupKey(id, metric, toMin) },
  );
  try {
    for (let entries = await it.nextv(1000); entries.length > 0; entries = await it.nextv(1000)) {
      for (const [k, v] of entries) {
        const mem = overlay.get(k);
        if (mem?.loaded) continue;
        const stored = readBucket(new DataView(v.buffer, v.byteOffset, v.byteLength), 0);
        if (mem === undefined) found.set(k, stored);
        else {
          mergeBucket(mem.b, stored); // memory holds only the changes not merged yet; on a `last` tie they win
          mem.loaded = true;
        }
      }
    }
  } finally {
    await it.close();
  }
  for (const [k, mem] of overlay) found.set(k, mem.b);
  for (const [k, b] of heads) found.set(k, b);
  const out: TransferBucket[] = [];
  for (const [k, b] of found) {
    const { metric: name, minute } = parseRollupKey(k);
    if (b[3] > 0 && minute >= fromMin && minute < toMin) out.push({ metric: name, minute, b });
  }
  return out.sort((a, b) => (a.metric < b.metric ? -1 : a.metric > b.metric ? 1 : a.minute - b.minute));
}

/**
 * Deletes every bucket with minute < cutoff — heads in device records, unwritten ones in memory, stored ones — and
 * resolves with how many once durable. One pass over the `r:` keys that seeks past each series' live buckets after
 * its first, so it reads the expired keys plus one per series.
 */
export async function pruneStored(
  db: Db,
  commit: Committer,
  devices: Iterable<Device>,
  cutoff: number,
  stop: () => boolean,
): Promise<number> {
  let n = 0;
  const g = commit.pending;
  for (const dev of devices) {
    const m = dev.m;
    for (let o = 0; o < dev.shape.length * SLOT; o += SLOT) {
      if (m[o + HEAD_MINUTE] === -Infinity || m[o + HEAD_MINUTE] >= cutoff) continue;
      m[o + HEAD_MINUTE] = -Infinity;
      clearBucket(m, o + HEAD);
      g.devices.add(dev);
      n++;
    }
  }
  for (const k of [...g.buckets.keys()]) if (minuteOfKey(k) < cutoff) g.buckets.delete(k);
  for (const k of [...commit.cold.keys()]) if (minuteOfKey(k) < cutoff) commit.cold.delete(k);
  const keys = db.keys({ gte: 'r:', lt: 'r;' });
  let expired: string[] = [];
  try {
    for (let k = await keys.next(); k !== undefined && !stop(); k = await keys.next()) {
      if (minuteOfKey(k) >= cutoff) {
        keys.seek(`${k.slice(0, k.length - 13)}\u0001`); // past this series' remaining buckets
        continue;
      }
      expired.push(k);
      n++;
      if (expired.length >= PRUNE_CHUNK) {
        commit.deleteStored(expired);
        expired = [];
        await commit.barrier();
      }
    }
  } finally {
    await keys.close();
  }
  commit.deleteStored(expired);
  await commit.barrier();
  return n;
}

export async function storedKeys(db: Db, gte: string, lt: string): Promise<string[]> {
  const out: string[] = [];
  for await (const k of db.keys({ gte, lt })) out.push(k);
  return out;
}

async function scan(db: Db, gte: string, lt: string, fn: (k: string, v: Uint8Array) => void): Promise<void> {
  const it = db.iterator({ gte, lt });
  try {
    for (let entries = await it.nextv(1000); entries.length > 0; entries = await it.nextv(1000))
      for (const [k, v] of entries) fn(k, v);
  } finally {
    await it.close();
  }
}
