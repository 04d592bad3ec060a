import { ProtoReader } from './reader.js';
import { Signal } from './signal.js';
import { resourceDeviceId } from './visit.js';

/**
 * An OTLP Export*ServiceRequest cut along its resources, without decoding what they hold. Metrics, logs and traces
 * share the shape that matters here: field 1 of the request is a repeated ResourceX whose field 1 is the Resource
 * and whose field 2 the repeated ScopeX, which holds its items (metrics, log records, spans) under field 2.
 *
 * The aggregator uses it to send each device's resources to the node that owns the device, and the rest to export,
 * as the original bytes: attributes, scopes and every point type travel untouched. Protobuf concatenation appends
 * repeated fields, so joining entries of one request yields the request holding just them.
 */
export interface ResourceEntry {
  /** The resource's `device.id` attribute ('' when it has none). */
  deviceId: string;
  /** The entry's bytes in the request, tag and length included. */
  start: number;
  end: number;
  /** Data points (every metric type), log records or spans it holds. */
  items: number;
}

export function resourceEntries(signal: Signal, bytes: Uint8Array): ResourceEntry[] {
  const r = new ProtoReader(bytes);
  const out: ResourceEntry[] = [];
  while (r.pos < r.end) {
    const start = r.pos;
    const key = r.varint();
    if (key !== 0x0a) {
      r.skip(key & 7);
      continue;
    }
    const end = r.submessageEnd();
    let deviceId = '';
    let items = 0;
    r.fields(end, (f, w) => {
      if (f === 1 && w === 2) deviceId = resourceDeviceId(r, r.submessageEnd());
      else if (f === 2 && w === 2) items += scopeItems(r, r.submessageEnd(), signal);
      else r.skip(w);
    });
    out.push({ deviceId, start, end, items });
  }
  return out;
}

/** The request holding only `entries` of `bytes` (in their order). */
export function joinEntries(bytes: Uint8Array, entries: readonly ResourceEntry[]): Uint8Array {
  let size = 0;
  for (const e of entries) size += e.end - e.start;
  if (entries.length > 0 && size === bytes.length) return bytes;
  const out = new Uint8Array(size);
  let at = 0;
  for (const e of entries) {
    out.set(bytes.subarray(e.start, e.end), at);
    at += e.end - e.start;
  }
  return out;
}

/** Items (data points, log records, spans) of a whole request. */
export function countItems(signal: Signal, bytes: Uint8Array): number {
  let n = 0;
  for (const e of resourceEntries(signal, bytes)) n += e.items;
  return n;
}

/** Metric's data fields (gauge, sum, histogram, exponential histogram, summary); each holds data_points = 1. */
const METRIC_DATA = new Set([5, 7, 9, 10, 11]);

function scopeItems(r: ProtoReader, end: number, signal: Signal): number {
  let n = 0;
  r.fields(end, (f, w) => {
    if (f !== 2 || w !== 2) return r.skip(w);
    const itemEnd = r.submessageEnd();
    if (signal !== Signal.METRICS) {
      n++;
      r.pos = itemEnd;
      return;
    }
    r.fields(itemEnd, (mf, mw) => {
      if (!METRIC_DATA.has(mf) || mw !== 2) return r.skip(mw);
      r.fields(r.submessageEnd(), (df, dw) => {
        if (df === 1 && dw === 2) n++;
        r.skip(dw);
      });
    });
  });
  return n;
}
