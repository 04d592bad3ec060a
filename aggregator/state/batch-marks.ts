import { SourceDedup } from '../device/dedup.js';
import type { BatchId, DeviceStateOptions } from './types.js';

/**
 * Marks batch `id` applied in its source's dedup record (made on first sight): the agent's buffer id and low-water
 * mark first, then the batch itself (or its part, for one owner's part of a split batch). Returns the record to
 * write, or null when the batch was applied before (nothing is marked).
 */
export function markApplied(
  sources: Map<string, SourceDedup>,
  id: BatchId,
  onNewBuffer: DeviceStateOptions['onNewBuffer'],
): SourceDedup | null {
  let src = sources.get(id.source);
  if (src === undefined) sources.set(id.source, (src = new SourceDedup()));
  const was = src.bufferId;
  if (id.bufferId && src.useBuffer(id.bufferId) && was !== 0) onNewBuffer?.(id.source, was, id.bufferId);
  // The batch itself is unacknowledged, so a mark above its own seq is an agent's mistake: never past it.
  if (id.ackedBelow) src.raise(Math.min(id.ackedBelow, id.seq));
  const part = id.part;
  if (part === undefined ? src.has(id.seq) : src.hasPart(id.seq, part)) return null;
  if (part === undefined) src.add(id.seq);
  else src.addPart(id.seq, part);
  return src;
}
