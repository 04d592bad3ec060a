import { corrupt } from './bytes.js';

/**
 * What both ends of one uplink stream remember between frames (frame-codec.ts): dictionaries of the byte strings
 * that repeat batch after batch (a device's resource, a scope, a metric's name and type, a point's attributes) and,
 * per series, the last timestamp, its delta and the last value, so a point costs its change, not its size.
 *
 * The encoder and the decoder change their state the same way for every segment, in stream order; neither depends
 * on acknowledgements. Limits bound what a peer can make the other hold: an encoder about to pass one starts the
 * state over (a segment flag both ends act on); a decoder refuses a stream that passes one.
 */

export const LIMITS = {
  /** Entries per dictionary (refs are varints; series keys pack them, see seriesKey). */
  entries: { resource: 1 << 20, scope: 4095, metric: (1 << 20) - 1, attrs: (1 << 20) - 2 },
  /** Bytes held in all dictionaries together. */
  dictBytes: 8 << 20,
  /** Series remembered. */
  series: 400_000,
} as const;

export type DictKind = keyof typeof LIMITS.entries;

export class Dict {
  readonly entries: Uint8Array[] = [];
  /** A hash of an entry's bytes → the newest entry with it; older ones with the same hash chain through `next`. */
  private readonly byHash = new Map<number, number>();
  private readonly next: number[] = [];

  constructor(readonly limit: number) {}

  /** Index of the entry equal to buf[from, to), or -1: compared in place, nothing allocated. */
  find(buf: Uint8Array, from: number, to: number): number {
    let i = this.byHash.get(hashBytes(buf, from, to)) ?? -1;
    while (i >= 0) {
      if (equalBytes(this.entries[i], buf, from, to)) return i;
      i = this.next[i];
    }
    return -1;
  }

  /** Adds `bytes` (kept as given: pass a copy). */
  add(bytes: Uint8Array): number {
    const i = this.entries.length;
    if (i >= this.limit) corrupt(`dictionary holds more than ${this.limit} entries`);
    const h = hashBytes(bytes, 0, bytes.length);
    this.entries.push(bytes);
    this.next.push(this.byHash.get(h) ?? -1);
    this.byHash.set(h, i);
    return i;
  }

  get(i: number): Uint8Array {
    const e = this.entries[i];
    if (e === undefined) corrupt(`reference ${i} to a dictionary of ${this.entries.length} entries`);
    return e;
  }
}

/** FNV-1a over buf[from, to), cut to 30 bits so that it stays a small integer (a Map key that is not boxed). */
export function hashBytes(buf: Uint8Array, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ buf[i], 0x01000193);
  return h & 0x3fffffff;
}

function equalBytes(a: Uint8Array, buf: Uint8Array, from: number, to: number): boolean {
  if (a.length !== to - from) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== buf[from + i]) return false;
  return true;
}

/** Value kinds of a data point (the low two bits of its flags). */
export const Kind = { NONE: 0, INT: 1, DOUBLE: 2 } as const;

export class Series {
  /** Last time_unix_nano (halves) and the delta before it, in ns; hasTime false until the first. */
  tLo = 0;
  tHi = 0;
  tDelta = 0;
  hasTime = false;
  /** Last start_time_unix_nano. */
  sLo = 0;
  sHi = 0;
  /** Last safe integer value. */
  int = 0;
  /** Last double: its bits (for XOR) and, when it was decimal, its exponent and mantissa. */
  dLo = 0;
  dHi = 0;
  exp = -1;
  mant = 0;
}

export class StreamState {
  resource = new Dict(LIMITS.entries.resource);
  scope = new Dict(LIMITS.entries.scope);
  metric = new Dict(LIMITS.entries.metric);
  attrs = new Dict(LIMITS.entries.attrs);
  dictBytes = 0;
  /** Per resource index, its series by seriesKey. */
  series: Map<number, Series>[] = [];
  seriesCount = 0;
  /** Seq of the last segment (segment seqs are coded as deltas). */
  lastSeq = 0;
  /** What a decoder visiting the columns read once per entry: each resource entry's device.id, metric entry's name. */
  deviceIds: string[] = [];
  /** Each resource entry's Resource message (null: none), for visitors that keep a device's resource attributes. */
  resources: (Uint8Array | null)[] = [];
  /**
   * Each metric entry read apart once (metric-column-decoder.ts), three numbers per entry: its kind (5 gauge, 7 sum;
   * 0 not yet read) and where its Metric fields start and end (the data's fields follow). Numbers, not views: a
   * stream may hold a million entries.
   */
  metricParts: number[] = [];
  /** Each metric entry's name, read when a visitor first needs it. */
  metricNames: string[] = [];

  clear(): void {
    this.resource = new Dict(LIMITS.entries.resource);
    this.scope = new Dict(LIMITS.entries.scope);
    this.metric = new Dict(LIMITS.entries.metric);
    this.attrs = new Dict(LIMITS.entries.attrs);
    this.dictBytes = 0;
    this.series = [];
    this.seriesCount = 0;
    this.lastSeq = 0;
    this.deviceIds = [];
    this.resources = [];
    this.metricParts = [];
    this.metricNames = [];
  }

  /**
   * True when a segment of `bytes` input bytes with these many resources, scopes, metrics and points could pass a
   * limit (each may add at most one entry, each point one series): the encoder starts over before it.
   */
  nearLimits(bytes: number, n: { resources: number; scopes: number; metrics: number; points: number }): boolean {
    const e = LIMITS.entries;
    return (
      this.dictBytes + bytes > LIMITS.dictBytes ||
      this.resource.entries.length + n.resources > e.resource ||
      this.scope.entries.length + n.scopes > e.scope ||
      this.metric.entries.length + n.metrics > e.metric ||
      this.attrs.entries.length + n.points > e.attrs ||
      this.seriesCount + n.points > LIMITS.series
    );
  }

  dict(kind: DictKind): Dict {
    return this[kind];
  }

  /** Adds `bytes` (kept as given: pass a copy) to the `kind` dictionary. */
  addEntry(kind: DictKind, bytes: Uint8Array): number {
    this.dictBytes += bytes.length;
    if (this.dictBytes > LIMITS.dictBytes) corrupt(`dictionaries hold more than ${LIMITS.dictBytes} bytes`);
    return this[kind].add(bytes);
  }

  seriesOf(resource: number, scope: number, metric: number, attrs: number): Series {
    let byKey = this.series[resource];
    if (byKey === undefined) this.series[resource] = byKey = new Map();
    // scope < 2^12, metric < 2^20, attrs + 1 < 2^20: the key stays below 2^52.
    const key = (scope * 1048576 + metric) * 1048576 + attrs + 1;
    let s = byKey.get(key);
    if (s === undefined) {
      if (this.seriesCount >= LIMITS.series) corrupt(`more than ${LIMITS.series} series`);
      byKey.set(key, (s = new Series()));
      this.seriesCount++;
    }
    return s;
  }
}
