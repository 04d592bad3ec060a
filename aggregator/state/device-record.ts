import { SeqTracker } from './seq-tracker.js';

/** A rollup bucket with its LevelDB key, created once per (device, metric, minute). */
export class Bucket {
  /** Generation of the pending write that carries this bucket, 0 when none (then it may leave memory). */
  pending = 0;
  constructor(readonly key: string, readonly start: number, readonly v: Float64Array) {}
}

/** One device's state as the node keeps it in memory. */
export class DeviceRecord {
  lastSeen = 0;
  tracker = new SeqTracker();
  /** Latest value per metric: the point with the newest ts. */
  readonly latest = new Map<string, { value: number; ts: number }>();
  /** Recent rollup buckets per metric, by bucket start; older ones live only in LevelDB. */
  readonly buckets = new Map<string, Map<number, Bucket>>();
  online = false;

  constructor(readonly id: string) {}

  /** [1 format][8 lastSeen][tracker][2 n] then n × ([2 len][name utf8][8 value][8 ts]). */
  encode(): Uint8Array {
    const names = [...this.latest.keys()].map((k) => Buffer.from(k));
    const size = 1 + 8 + SeqTracker.BYTES + 2 + names.reduce((n, b) => n + 2 + b.length + 16, 0);
    const out = Buffer.allocUnsafe(size);
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    let p = 0;
    view.setUint8(p, 1);
    view.setFloat64(p + 1, this.lastSeen, true);
    p += 9;
    this.tracker.write(view, p);
    p += SeqTracker.BYTES;
    view.setUint16(p, names.length, true);
    p += 2;
    let i = 0;
    for (const { value, ts } of this.latest.values()) {
      const name = names[i++];
      view.setUint16(p, name.length, true);
      out.set(name, p + 2);
      p += 2 + name.length;
      view.setFloat64(p, value, true);
      view.setFloat64(p + 8, ts, true);
      p += 16;
    }
    return out;
  }

  static decode(id: string, bytes: Uint8Array): DeviceRecord {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (view.getUint8(0) !== 1) throw new Error(`device record of '${id}' has format ${view.getUint8(0)}; this node reads format 1`);
    const r = new DeviceRecord(id);
    r.lastSeen = view.getFloat64(1, true);
    let p = 9;
    r.tracker = SeqTracker.read(view, p);
    p += SeqTracker.BYTES;
    const n = view.getUint16(p, true);
    p += 2;
    for (let i = 0; i < n; i++) {
      const len = view.getUint16(p, true);
      const name = Buffer.from(bytes.buffer, bytes.byteOffset + p + 2, len).toString('utf8');
      p += 2 + len;
      r.latest.set(name, { value: view.getFloat64(p, true), ts: view.getFloat64(p + 8, true) });
      p += 16;
    }
    return r;
  }
}
