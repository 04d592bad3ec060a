import type { Compression } from '../../protocol/compression.js';
import type { Signal } from '../../protocol/otlp/signal.js';

/** A batch as the buffer hands it out (to the uplink, to `buffer dump`). */
export interface StoredBatch {
  seq: number;
  /** Aggregator address (host:port) this batch's devices belonged to when it was formed; '' = any seed. */
  route: string;
  signal: Signal;
  compression: Compression;
  points: number;
  createdMs: number;
  /** The compressed OTLP Export*ServiceRequest, as stored. */
  payload: Uint8Array;
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

/**
 * The values of the buffer's `b:` (batch record) and `i:` (index entry) keys; the layout is drawn in
 * circular-buffer.ts.
 */
export const FORMAT = 1;
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

export function decodeRecord(seq: number, v: Uint8Array): StoredBatch {
  const view = new DataView(v.buffer, v.byteOffset, v.byteLength);
  if (v.length < HEADER_BYTES || v[0] !== FORMAT)
    throw new Error(`stored batch ${seq} is not a format-${FORMAT} record`);
  const routeLength = v[3];
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
