import type { ClassicLevel } from 'classic-level';
import type { Committer } from './commit.js';
import { SourceDedup } from '../device/dedup.js';
import { Device, HEAD, HEAD_MINUTE, SLOT } from '../device/device-record.js';
import { copyBucket, mergeBucket, parseRollupKey, readBucket, rollupKey, rollupRange } from '../device/rollups.js';
import type { TransferBucket } from './transfer.js';

/** The state store's reads of what LevelDB holds (layout in db.ts): loading and bucket queries (pruning: tiers.ts). */

type Db = ClassicLevel<string, Uint8Array>;

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
  /** `r:` for 1-minute buckets, tierPrefix() for a tier's (keyed by their period's first minute). */
  prefix = 'r:',
): Promise<TransferBucket[]> {
  const range = rollupRange(id, metric, prefix);
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
    metric === undefined
      ? range
      : { gte: rollupKey(id, metric, fromMin, prefix), lt: rollupKey(id, metric, toMin, prefix) },
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
