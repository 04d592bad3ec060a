import { Device } from '../device/device-record.js';
import { BUCKET_BYTES, readBucket, writeBucket } from '../device/rollups.js';

/**
 * A device's full state as one self-contained, versioned value, for moving devices between nodes (rebalancing):
 *
 *   [4 "OEDS"][1 version = 1][2 id length][id UTF-8][4 record length][the device's `s:` record, format 1]
 *   [4 n buckets] then n × ([2 metric length][metric UTF-8][8 minute][min, max, sum, count, last, last ts: 6 × 8])
 *
 * Numbers little-endian. The buckets are those outside the record (older than each metric's head bucket). Version 2
 * (written only when the device has buckets of coarser tiers, so a node of the version before still reads exports
 * without them) adds [4 resolution in minutes] after each bucket's minute.
 */
const MAGIC = 0x5344454f; // "OEDS" read as a little-endian u32
const VERSION = 1;
const VERSION_TIERS = 2;

export interface TransferBucket {
  metric: string;
  minute: number;
  b: Float64Array;
  /** The bucket's tier (minutes per bucket); absent or 1 = a 1-minute bucket. */
  resolutionMin?: number;
}

/** A device's `s:` record on its own. */
export function encodeRecord(dev: Device): Buffer {
  const buf = Buffer.alloc(dev.encodedSize());
  dev.encode(buf, new DataView(buf.buffer, buf.byteOffset, buf.byteLength), 0);
  return buf;
}

export function encodeTransfer(deviceId: string, record: Uint8Array, buckets: TransferBucket[]): Uint8Array {
  const id = Buffer.from(deviceId, 'utf8');
  const names = buckets.map((x) => Buffer.from(x.metric, 'utf8'));
  const recordSize = record.length;
  const tiers = buckets.some((x) => (x.resolutionMin ?? 1) !== 1);
  const per = 8 + BUCKET_BYTES + (tiers ? 4 : 0);
  const size = 11 + id.length + recordSize + 4 + names.reduce((n, b) => n + 2 + b.length + per, 0);
  const buf = Buffer.alloc(size);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  view.setUint32(0, MAGIC, true);
  view.setUint8(4, tiers ? VERSION_TIERS : VERSION);
  view.setUint16(5, id.length, true);
  buf.set(id, 7);
  let at = 7 + id.length;
  view.setUint32(at, recordSize, true);
  buf.set(record, at + 4);
  at += 4 + recordSize;
  view.setUint32(at, buckets.length, true);
  at += 4;
  buckets.forEach((x, i) => {
    view.setUint16(at, names[i].length, true);
    buf.set(names[i], at + 2);
    at += 2 + names[i].length;
    view.setFloat64(at, x.minute, true);
    at += 8;
    if (tiers) {
      view.setUint32(at, x.resolutionMin ?? 1, true);
      at += 4;
    }
    at = writeBucket(view, at, x.b);
  });
  if (at !== size) throw new Error(`device export of '${deviceId}' encoded to ${at} bytes, expected ${size}`);
  return buf;
}

export function decodeTransfer(bytes: Uint8Array): { device: Device; buckets: TransferBucket[] } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 11 || view.getUint32(0, true) !== MAGIC)
    throw new Error('not a device state export (expected the "OEDS" magic)');
  const version = view.getUint8(4);
  if (version !== VERSION && version !== VERSION_TIERS)
    throw new Error(
      `device state export has version ${version}; this node reads versions ${VERSION} and ${VERSION_TIERS}`,
    );
  const text = (at: number, len: number) => Buffer.from(bytes.buffer, bytes.byteOffset + at, len).toString('utf8');
  const idLen = view.getUint16(5, true);
  const id = text(7, idLen);
  let at = 7 + idLen;
  const recordLen = view.getUint32(at, true);
  const device = Device.decode(id, bytes.subarray(at + 4, at + 4 + recordLen));
  at += 4 + recordLen;
  const n = view.getUint32(at, true);
  at += 4;
  const buckets: TransferBucket[] = [];
  for (let i = 0; i < n; i++) {
    const len = view.getUint16(at, true);
    const metric = text(at + 2, len);
    at += 2 + len;
    const minute = view.getFloat64(at, true);
    at += 8;
    let resolutionMin = 1;
    if (version === VERSION_TIERS) {
      resolutionMin = view.getUint32(at, true);
      at += 4;
    }
    buckets.push({ metric, minute, b: readBucket(view, at), ...(resolutionMin !== 1 ? { resolutionMin } : {}) });
    at += BUCKET_BYTES;
  }
  if (at !== bytes.length)
    throw new Error(`device state export of '${id}' has ${bytes.length - at} bytes after its end`);
  return { device, buckets };
}

/** The `h:<device>` value: the hashes of the exports merged into a device (float64 little-endian each). */
export function encodeMergeHashes(hashes: readonly number[]): Uint8Array {
  const value = new Uint8Array(8 * hashes.length);
  const view = new DataView(value.buffer);
  hashes.forEach((h, i) => view.setFloat64(8 * i, h, true));
  return value;
}
