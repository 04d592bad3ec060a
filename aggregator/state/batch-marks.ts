import { deviceHash, SourceDedup } from '../device/dedup.js';
import type { BatchId, DeviceStateOptions } from './types.js';

/**
 * Marks batch `id` applied in its source's dedup record (made on first sight): the agent's buffer id and low-water
 * mark first, then the batch itself, or, for one owner's part of a split batch, the devices of that part. Returns the
 * record to write and the devices of the batch to leave out (applied before as parts of it: a retry split another
 * way, or the whole batch after some of its parts), or null when everything in it was applied before.
 */
export function markApplied(
  sources: Map<string, SourceDedup>,
  id: BatchId,
  onNewBuffer: DeviceStateOptions['onNewBuffer'],
  deviceIds: () => string[],
): { src: SourceDedup; skip: Set<string> | null } | null {
  let src = sources.get(id.source);
  if (src === undefined) sources.set(id.source, (src = new SourceDedup()));
  const was = src.bufferId;
  if (id.bufferId && src.useBuffer(id.bufferId) && was !== 0) onNewBuffer?.(id.source, was, id.bufferId);
  // The batch itself is unacknowledged, so a mark above its own seq is an agent's mistake: never past it.
  if (id.ackedBelow) src.raise(Math.min(id.ackedBelow, id.seq));
  if (src.has(id.seq)) return null;
  const marked = src.partDevices(id.seq);
  if (id.part === undefined && marked === undefined) {
    src.add(id.seq);
    return { src, skip: null };
  }
  // Parts are involved: which of this batch's devices were applied already? ('' stands for a part without devices.)
  const before = new Set(marked ?? []);
  const ids = deviceIds();
  const skip = new Set<string>();
  const fresh: number[] = [];
  for (const d of ids.length === 0 ? [''] : ids) {
    const h = deviceHash(d);
    if (before.has(h)) skip.add(d);
    else fresh.push(h);
  }
  if (id.part === undefined) src.add(id.seq);
  else if (fresh.length === 0) return null;
  else src.addPart(id.seq, fresh);
  return { src, skip: skip.size > 0 ? skip : null };
}
