import { decompress, ZstdCompressor, Compression } from '../../protocol/compression.js';
import { FrameDecoder, FrameEncoder, type Segment } from '../../protocol/uplink/frame/frame-codec.js';
import type { PackedBatch, StoredBatch } from './record.js';

/**
 * Packing of stored batches that wait long (an uplink that is down): runs of small batches become one record
 * holding each batch's OTLP as one frame of the uplink's coding with a fresh state — columns, per-series deltas,
 * dictionaries — zstd-compressed. Each batch keeps its seq, so the aggregator deduplicates them exactly as if they
 * had been sent alone; a packed record inflates back to the same OTLP requests.
 */

/** The most a packed record may hold: its frame must stay well inside what an aggregator takes in one frame. */
export const PACK_LIMITS = { points: 131_072, batches: 8192, inflatedBytes: 12 << 20 } as const;
/** What a packed record may inflate to when read back (a corrupt record cannot take more). */
const MAX_UNPACKED = 64 << 20;

/**
 * Packs `batches`, or the longest run from their start whose OTLP stays within PACK_LIMITS.inflatedBytes (at least
 * one): `segments` of the result says which.
 */
export function packBatches(batches: readonly StoredBatch[], zstd: ZstdCompressor): PackedBatch {
  const segments: Segment[] = [];
  let inflated = 0;
  for (const b of batches) {
    if (b.segments) throw new Error(`batch ${b.seq} is packed already`);
    const otlp = decompress(b.payload, b.compression);
    if (segments.length > 0 && inflated + otlp.length > PACK_LIMITS.inflatedBytes) break;
    inflated += otlp.length;
    segments.push({ seq: b.seq, signal: b.signal, points: b.points, otlp });
  }
  const body = new FrameEncoder().encode(segments);
  return {
    route: batches[0].route,
    signal: batches[0].signal,
    points: segments.reduce((n, s) => n + s.points, 0),
    createdMs: batches[0].createdMs,
    segments: segments.map((s) => ({ seq: s.seq, points: s.points })),
    payload: zstd.compress(body),
  };
}

/** The OTLP requests a stored record holds: one for a plain batch, each of a packed one (throws if unreadable). */
export function segmentsOf(b: StoredBatch): Segment[] {
  if (b.segments === undefined)
    return [{ seq: b.seq, signal: b.signal, points: b.points, otlp: decompress(b.payload, b.compression) }];
  const body = decompress(b.payload, Compression.ZSTD, MAX_UNPACKED);
  const out = new FrameDecoder().decode(body, MAX_UNPACKED);
  if (out.length !== b.segments.length || out.some((s, i) => s.seq !== b.segments![i].seq))
    throw new Error(`packed record ${b.seq} holds other batches than its header lists`);
  return out;
}
