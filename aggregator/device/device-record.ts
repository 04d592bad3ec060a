import { SeqTracker } from './seq-tracker.js';
import { tenantOfResource } from '../tenants/stamp.js';
import { BUCKET_FIELDS, clearBucket, copyBucket, minuteOf } from './rollups.js';
import { isValidName } from '../../protocol/payload/shape.js';

/**
 * A device as the node holds it in memory, and its `s:` record. Per metric the device keeps one slot of SLOT
 * float64s in one array — [latest value, latest ts, head minute, head bucket × 6] — where the head is the bucket of
 * the newest minute the metric has: the bucket almost every point lands in, so the hot path touches no LevelDB key
 * but the device's own record. Older buckets live under `r:` keys (see store.ts); a bucket is in exactly one place.
 *
 * Metric names are not kept per device: devices that report the same metrics share one MetricShape (name → slot),
 * as JS engines share hidden classes, so 100k devices with the same five metrics hold five names, not 500k.
 */
export const SLOT = 3 + BUCKET_FIELDS;
/** Offsets within a slot. */
export const LATEST_VALUE = 0;
export const LATEST_TS = 1;
export const HEAD_MINUTE = 2;
export const HEAD = 3;

/** Format 1; format 2 is format 1 followed by the device's Resource (written only for a device that has one). */
const RECORD_VERSION = 1;
const RECORD_VERSION_RESOURCE = 2;
/** Largest Resource kept per device; a larger one is not kept (the device's data still is). */
export const MAX_RESOURCE_BYTES = 8192;
const HEAD_PRESENT = 1;
const HEAD_LAST_IS_LATEST = 2;
const HEAD_MINUTE_OF_LATEST = 4;

/**
 * The names a chain of shapes lists, in slot order. Shapes made by adding one metric at a time to the newest shape
 * of a chain share it: a device that reports 1,000 new names holds one list of 1,000 (plus 1,000 small shape
 * objects), not 1 + 2 + … + 1,000 copies.
 */
class ShapeChain {
  readonly names: string[] = [];
  readonly bytes: Buffer[] = [];
  readonly index = new Map<string, number>();

  push(name: string): void {
    this.index.set(name, this.names.length);
    this.names.push(name);
    this.bytes.push(Buffer.from(name, 'utf8'));
  }
}

export class MetricShape {
  static readonly EMPTY = new MetricShape(new ShapeChain(), 0);
  /** The shape one metric longer along this shape's chain, once made. */
  private next: MetricShape | null = null;
  /** Shapes that add another metric than the chain's next one: each starts its own chain (a copy of this prefix). */
  private forks: Map<string, MetricShape> | null = null;

  private constructor(
    private readonly chain: ShapeChain,
    readonly length: number,
  ) {}

  /** The slot of `name`, or undefined when this shape does not hold it. */
  slotOf(name: string): number | undefined {
    const s = this.chain.index.get(name);
    return s !== undefined && s < this.length ? s : undefined;
  }

  name(slot: number): string {
    return this.chain.names[slot];
  }

  /** UTF-8 of the name in `slot`, for records. */
  bytesOf(slot: number): Buffer {
    return this.chain.bytes[slot];
  }

  /** The names in slot order (a copy when the chain runs past this shape). */
  get names(): readonly string[] {
    const all = this.chain.names;
    return all.length === this.length ? all : all.slice(0, this.length);
  }

  /** This shape plus one metric (shared by every device that adds the same metrics in the same order). */
  with(name: string): MetricShape {
    const c = this.chain;
    if (this.length === c.names.length) {
      c.push(name);
      return (this.next = new MetricShape(c, this.length + 1));
    }
    if (c.names[this.length] === name) return this.next!;
    let s = this.forks?.get(name);
    if (s === undefined) {
      const fork = new ShapeChain();
      for (let i = 0; i < this.length; i++) fork.push(c.names[i]);
      fork.push(name);
      (this.forks ??= new Map()).set(name, (s = new MetricShape(fork, this.length + 1)));
    }
    return s;
  }
}

const NO_SLOTS = new Float64Array(0);
/** Most metrics one device can hold: the record stores the count in 16 bits. */
export const MAX_METRICS = 65_535;

export class Device {
  /** Its LevelDB key. */
  readonly key: string;
  /** Epoch ms (server time) its data last arrived. */
  lastSeen = 0;
  /** Online as of the last sweep (sweepOnline reports the changes). */
  online = false;
  shape = MetricShape.EMPTY;
  /** SLOT float64s per metric of `shape`, in order. */
  m = NO_SLOTS;
  seq = new SeqTracker();
  /** Set when deleted, so a write already gathered skips it. */
  deleted = false;
  /** Its Resource message as last received (attributes: gateway, site…), or null. */
  resource: Uint8Array | null = null;
  /** The tenant its Resource names ('' = none): data of another tenant is not applied to it. */
  tenant = '';

  constructor(readonly id: string) {
    this.key = `s:${id}`;
  }

  /**
   * Slot of a metric the device has not reported before; -1 for a name that cannot be stored (outside the metric
   * name rule the agent applies, protocol/payload/shape.ts) or past `maxMetrics` names for this device.
   */
  addMetric(name: string, maxMetrics = MAX_METRICS): number {
    if (this.shape.length >= Math.min(maxMetrics, MAX_METRICS) || !isValidName(name)) return -1;
    return this.appendMetric(name);
  }

  /** Adds a slot for `name` with no checks (records read back were checked when written). */
  private appendMetric(name: string): number {
    const slot = this.shape.length;
    this.shape = this.shape.with(name);
    const need = (slot + 1) * SLOT;
    if (this.m.length < need) {
      const grown = new Float64Array(Math.max(need, Math.ceil((this.m.length / SLOT) * 1.5) * SLOT));
      grown.set(this.m);
      this.m = grown;
    }
    const o = slot * SLOT;
    this.m[o + LATEST_VALUE] = NaN;
    this.m[o + LATEST_TS] = -Infinity;
    this.m[o + HEAD_MINUTE] = -Infinity;
    clearBucket(this.m, o + HEAD);
    return slot;
  }

  slotOf(name: string): number {
    return this.shape.slotOf(name) ?? this.addMetric(name);
  }

  /**
   * Merges another node's record of this device (a handoff): seq accounting, last seen, and each metric's latest
   * value when newer. Returns the other record's head buckets, for the caller to merge with the stored ones.
   */
  mergeRecord(inc: Device): { metric: string; minute: number; b: Float64Array }[] {
    if (inc.resource !== null && (this.resource === null || inc.lastSeen > this.lastSeen)) {
      this.resource = inc.resource;
      this.tenant = inc.tenant;
    }
    this.seq.merge(inc.seq, inc.lastSeen > this.lastSeen);
    this.lastSeen = Math.max(this.lastSeen, inc.lastSeen);
    const heads: { metric: string; minute: number; b: Float64Array }[] = [];
    inc.shape.names.forEach((metric, i) => {
      const slot = this.slotOf(metric);
      if (slot < 0) return;
      const o = i * SLOT;
      const d = slot * SLOT;
      if (inc.m[o + LATEST_TS] > this.m[d + LATEST_TS]) {
        this.m[d + LATEST_VALUE] = inc.m[o + LATEST_VALUE];
        this.m[d + LATEST_TS] = inc.m[o + LATEST_TS];
      }
      if (inc.m[o + HEAD_MINUTE] !== -Infinity)
        heads.push({ metric, minute: inc.m[o + HEAD_MINUTE], b: copyBucket(inc.m, o + HEAD) });
    });
    return heads;
  }

  /**
   * Keeps `resource` as the device's Resource when it differs from the one held (a copy: it is a view into a
   * request). One larger than MAX_RESOURCE_BYTES is not kept. True when the record changed.
   */
  setResource(resource: Uint8Array): boolean {
    const had = this.resource;
    if (resource.length > MAX_RESOURCE_BYTES) return false;
    if (had !== null && had.length === resource.length && Buffer.compare(had, resource) === 0) return false;
    this.resource = Uint8Array.prototype.slice.call(resource);
    this.tenant = tenantOfResource(this.resource);
    return true;
  }

  /** Bytes encode() takes. */
  encodedSize(): number {
    let n = 11 + this.seq.encodedSize() + (this.resource === null ? 0 : 4 + this.resource.length);
    const m = this.m;
    const shape = this.shape;
    for (let i = 0, o = 0; i < shape.length; i++, o += SLOT) {
      n += 19 + shape.bytesOf(i).length;
      if (m[o + HEAD_MINUTE] !== -Infinity)
        n += 32 + (m[o + HEAD_MINUTE] === minuteOf(m[o + LATEST_TS]) ? 0 : 8) + (headLastIsLatest(m, o) ? 0 : 16);
    }
    return n;
  }

  /**
   * The `s:` record, format 1, little-endian:
   *   [1 version][8 last seen][seq tracker (seq-tracker.ts)][2 n metrics] then per metric
   *   [2 name length][name UTF-8][1 flags][8 latest value][8 latest ts] and, when flags has 1 (a head bucket),
   *   [8 head minute, unless flags 4: the minute of the latest ts][8 min][8 max][8 sum][8 count]
   *   [8 last][8 last ts, unless flags 2: they are the latest value and ts]
   * The elisions keep a typical record near 60 bytes per metric; it is rewritten on every change. Format 2 (a
   * device with a Resource) appends [4 length][the Resource message].
   */
  encode(buf: Buffer, view: DataView, at: number): number {
    view.setUint8(at, this.resource === null ? RECORD_VERSION : RECORD_VERSION_RESOURCE);
    view.setFloat64(at + 1, this.lastSeen, true);
    at = this.seq.write(view, at + 9);
    const shape = this.shape;
    view.setUint16(at, shape.length, true);
    at += 2;
    const m = this.m;
    for (let i = 0, o = 0; i < shape.length; i++, o += SLOT) {
      const name = shape.bytesOf(i);
      view.setUint16(at, name.length, true);
      buf.set(name, at + 2);
      at += 2 + name.length;
      const head = m[o + HEAD_MINUTE];
      const flagsAt = at;
      view.setFloat64(at + 1, m[o + LATEST_VALUE], true);
      view.setFloat64(at + 9, m[o + LATEST_TS], true);
      at += 17;
      let flags = 0;
      if (head !== -Infinity) {
        flags = HEAD_PRESENT;
        if (head === minuteOf(m[o + LATEST_TS])) flags |= HEAD_MINUTE_OF_LATEST;
        else {
          view.setFloat64(at, head, true);
          at += 8;
        }
        for (let f = 0; f < 4; f++, at += 8) view.setFloat64(at, m[o + HEAD + f], true);
        if (headLastIsLatest(m, o)) flags |= HEAD_LAST_IS_LATEST;
        else {
          view.setFloat64(at, m[o + HEAD + 4], true);
          view.setFloat64(at + 8, m[o + HEAD + 5], true);
          at += 16;
        }
      }
      view.setUint8(flagsAt, flags);
    }
    if (this.resource !== null) {
      view.setUint32(at, this.resource.length, true);
      buf.set(this.resource, at + 4);
      at += 4 + this.resource.length;
    }
    return at;
  }

  static decode(id: string, bytes: Uint8Array): Device {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const version = view.getUint8(0);
    if (version !== RECORD_VERSION && version !== RECORD_VERSION_RESOURCE)
      throw new Error(
        `state record of device '${id}' has version ${version}; this node reads ${RECORD_VERSION} and ${RECORD_VERSION_RESOURCE}`,
      );
    const d = new Device(id);
    d.lastSeen = view.getFloat64(1, true);
    let at = d.seq.read(view, 9);
    const n = view.getUint16(at, true);
    at += 2;
    d.m = new Float64Array(n * SLOT);
    for (let i = 0; i < n; i++) {
      const len = view.getUint16(at, true);
      const name = Buffer.from(bytes.buffer, bytes.byteOffset + at + 2, len).toString('utf8');
      at += 2 + len;
      const o = d.appendMetric(name) * SLOT;
      const m = d.m;
      const flags = view.getUint8(at);
      m[o + LATEST_VALUE] = view.getFloat64(at + 1, true);
      m[o + LATEST_TS] = view.getFloat64(at + 9, true);
      at += 17;
      if ((flags & HEAD_PRESENT) === 0) continue;
      if (flags & HEAD_MINUTE_OF_LATEST) m[o + HEAD_MINUTE] = minuteOf(m[o + LATEST_TS]);
      else {
        m[o + HEAD_MINUTE] = view.getFloat64(at, true);
        at += 8;
      }
      for (let f = 0; f < 4; f++, at += 8) m[o + HEAD + f] = view.getFloat64(at, true);
      if (flags & HEAD_LAST_IS_LATEST) {
        m[o + HEAD + 4] = m[o + LATEST_VALUE];
        m[o + HEAD + 5] = m[o + LATEST_TS];
      } else {
        m[o + HEAD + 4] = view.getFloat64(at, true);
        m[o + HEAD + 5] = view.getFloat64(at + 8, true);
        at += 16;
      }
    }
    if (version === RECORD_VERSION_RESOURCE) {
      const len = view.getUint32(at, true);
      d.resource = Uint8Array.prototype.slice.call(bytes, at + 4, at + 4 + len);
      d.tenant = tenantOfResource(d.resource);
    }
    return d;
  }
}

function headLastIsLatest(m: Float64Array, o: number): boolean {
  return m[o + HEAD + 5] === m[o + LATEST_TS] && Object.is(m[o + HEAD + 4], m[o + LATEST_VALUE]);
}
