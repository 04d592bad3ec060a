import { Compression } from '../../protocol/compression.js';
import type { Signal } from '../../protocol/otlp/signal.js';

/** A batch as the buffer hands it out (to the uplink, to `buffer dump`). */
export interface StoredBatch {
  /** The batch's seq; for a packed record, the seq of the first batch it holds (its key). */
  seq: number;
  /** Aggregator address (host:port) this batch's devices belonged to when it was formed; '' = any seed. */
  route: string;
  signal: Signal;
  compression: Compression;
  points: number;
  createdMs: number;
  /**
   * The compressed OTLP Export*ServiceRequest, as stored; for a packed record, its batches as one frame of the
   * uplink's coding with a fresh state (protocol/uplink/frame/), zstd-compressed (pack.ts).
   */
  payload: Uint8Array;
  /** A packed record: the batches it holds (seq and points each, oldest first). Absent for a plain batch. */
  segments?: { seq: number; points: number }[];
}

/** A batch to store: the group commit's output. */
export interface NewBatch {
  /** Aggregator address to send to ('' or absent = any); at most 255 bytes. */
  route?: string;
  signal: Signal;
  compression: Compression;
  points: number;
  payload: Uint8Array;
  createdMs?: number;
}

/** Several stored batches packed into one record (pack.ts), each keeping its seq. */
export interface PackedBatch {
  route: string;
  signal: Signal;
  points: number;
  createdMs: number;
  segments: { seq: number; points: number }[];
  /** The batches as one frame, zstd-compressed. */
  payload: Uint8Array;
}

/**
 * The values of the buffer's `b:` (batch record) and `i:` (index entry) keys; the layout is drawn in
 * circular-buffer.ts. Records of format 1 hold one batch, of format 2 a pack of batches.
 */
export const FORMAT = 1;
export const FORMAT_PACKED = 2;
const HEADER_BYTES = 16;

export function encodeRecord(b: NewBatch, createdMs: number): Uint8Array {
  const route = Buffer.from(b.route ?? '');
  if (route.length > 255) throw new Error(`batch route is ${route.length} bytes; at most 255`);
  const out = new Uint8Array(HEADER_BYTES + route.length + b.payload.length);
  const view = new DataView(out.buffer);
  out[0] = FORMAT;
  out[1] = b.signal;
  out[2] = b.compression;
  out[3] = route.length;
  view.setUint32(4, b.points, true);
  view.setFloat64(8, createdMs, true);
  out.set(route, HEADER_BYTES);
  out.set(b.payload, HEADER_BYTES + route.length);
  return out;
}

/**
 * A packed record: [1 format 2][1 signal][1 compression: zstd][1 route length R][4 points LE][8 created ms][R route]
 * [4 n segments LE][n × ([8 seq, float64 LE][4 points LE])] then the frame.
 */
export function encodePackedRecord(p: PackedBatch): Uint8Array {
  const route = Buffer.from(p.route);
  if (route.length > 255) throw new Error(`batch route is ${route.length} bytes; at most 255`);
  const meta = 4 + p.segments.length * 12;
  const out = new Uint8Array(HEADER_BYTES + route.length + meta + p.payload.length);
  const view = new DataView(out.buffer);
  out[0] = FORMAT_PACKED;
  out[1] = p.signal;
  out[2] = Compression.ZSTD;
  out[3] = route.length;
  view.setUint32(4, p.points, true);
  view.setFloat64(8, p.createdMs, true);
  out.set(route, HEADER_BYTES);
  let at = HEADER_BYTES + route.length;
  view.setUint32(at, p.segments.length, true);
  at += 4;
  for (const s of p.segments) {
    view.setFloat64(at, s.seq, true);
    view.setUint32(at + 8, s.points, true);
    at += 12;
  }
  out.set(p.payload, at);
  return out;
}

export function decodeRecord(seq: number, v: Uint8Array): StoredBatch {
  const view = new DataView(v.buffer, v.byteOffset, v.byteLength);
  if (v.length < HEADER_BYTES || (v[0] !== FORMAT && v[0] !== FORMAT_PACKED))
    throw new Error(`stored batch ${seq} is not a format-${FORMAT} or format-${FORMAT_PACKED} record`);
  const routeLength = v[3];
  if (v[0] === FORMAT_PACKED) {
    let at = HEADER_BYTES + routeLength;
    const n = view.getUint32(at, true);
    at += 4;
    const segments: { seq: number; points: number }[] = [];
    for (let i = 0; i < n; i++, at += 12)
      segments.push({ seq: view.getFloat64(at, true), points: view.getUint32(at + 8, true) });
    return {
      seq,
      route: routeLength === 0 ? '' : Buffer.from(v.buffer, v.byteOffset + HEADER_BYTES, routeLength).toString(),
      signal: v[1] as Signal,
      compression: v[2] as Compression,
      points: view.getUint32(4, true),
      createdMs: view.getFloat64(8, true),
      payload: v.subarray(at),
      segments,
    };
  }
  return {
    seq,
    route: routeLength === 0 ? '' : Buffer.from(v.buffer, v.byteOffset + HEADER_BYTES, routeLength).toString(),
    signal: v[1] as Signal,
    compression: v[2] as Compression,
    points: view.getUint32(4, true),
    createdMs: view.getFloat64(8, true),
    payload: v.subarray(HEADER_BYTES + routeLength),
  };
}

export function encodeIndex(size: number, points: number, signal: Signal, createdMs: number): Uint8Array {
  const out = new Uint8Array(17);
  const view = new DataView(out.buffer);
  view.setUint32(0, size, true);
  view.setUint32(4, points, true);
  out[8] = signal;
  view.setFloat64(9, createdMs, true);
  return out;
}
