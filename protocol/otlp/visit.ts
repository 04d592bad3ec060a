import { ProtoReader } from './reader.js';
import { logRecord } from './decode.js';
import type { LogRecordJson } from './json-types.js';
import { ATTR_DEVICE_ID } from './semconv.js';

/**
 * A streaming view of an ExportMetricsServiceRequest for the aggregator's hot path: the device id of each Resource
 * and every number data point (gauge or sum) as (metric, time, value), with no object built per point. Histogram,
 * exponential histogram and summary points are skipped here (decode.ts reads them in full).
 *
 * Protobuf does not fix the order of fields, so a Resource may follow its scope_metrics: the scope ranges are noted
 * first and visited after the resource's device id is known.
 */
export interface MetricsVisitor {
  /**
   * A ResourceMetrics begins; `deviceId` is its `device.id` attribute, or '' when it has none. `resource` is the
   * Resource message's bytes (a view into the request: copy it to keep it), or null when it has none.
   */
  resource(deviceId: string, resource: Uint8Array | null): void;
  /** One NumberDataPoint of the current resource. `timeMs` is time_unix_nano / 1e6. */
  point(metric: string, timeMs: number, value: number): void;
}

export function visitMetricsRequest(bytes: Uint8Array, v: MetricsVisitor): void {
  const r = new ProtoReader(bytes);
  const scopes: number[] = []; // [start, end, start, end, …] of scope_metrics in the current ResourceMetrics
  while (r.pos < r.end) {
    const key = r.varint();
    if (key !== 0x0a) {
      r.skip(key & 7);
      continue;
    }
    const rmEnd = r.submessageEnd();
    let deviceId = '';
    let resource: Uint8Array | null = null;
    scopes.length = 0;
    r.fields(rmEnd, (f, w) => {
      if (f === 1 && w === 2) {
        const end = r.submessageEnd();
        resource = bytes.subarray(r.pos, end);
        deviceId = resourceDeviceId(r, end);
      } else if (f === 2 && w === 2) {
        const end = r.submessageEnd();
        scopes.push(r.pos, end);
        r.pos = end;
      } else r.skip(w);
    });
    v.resource(deviceId, resource);
    const after = r.pos;
    for (let i = 0; i < scopes.length; i += 2) {
      r.pos = scopes[i];
      scopeMetrics(r, scopes[i + 1], v);
    }
    r.pos = after;
  }
}

/**
 * The `device.id` of every ResourceLogs of an ExportLogsServiceRequest, in order ('' for a resource without one).
 * Log records and their bodies are skipped by length, never decoded: a request of deeply nested or huge bodies
 * costs one pass over its bytes and no allocation beyond the ids.
 */
export function visitLogsDeviceIds(
  bytes: Uint8Array,
  onResource: (deviceId: string, resource: Uint8Array | null) => void,
): void {
  const r = new ProtoReader(bytes);
  while (r.pos < r.end) {
    const key = r.varint();
    if (key !== 0x0a) {
      r.skip(key & 7);
      continue;
    }
    const rlEnd = r.submessageEnd();
    let deviceId = '';
    let resource: Uint8Array | null = null;
    r.fields(rlEnd, (f, w) => {
      if (f === 1 && w === 2) {
        const end = r.submessageEnd();
        resource = bytes.subarray(r.pos, end);
        deviceId = resourceDeviceId(r, end);
      } else r.skip(w);
    });
    onResource(deviceId, resource);
  }
}

/** The `device.id` of a ResourceMetrics given as its fields without scope_metrics ('' when it has none). */
export function resourceMetricsDeviceId(fields: Uint8Array): string {
  const r = new ProtoReader(fields);
  let id = '';
  r.fields(r.end, (f, w) => {
    if (f === 1 && w === 2) id = resourceDeviceId(r, r.submessageEnd());
    else r.skip(w);
  });
  return id;
}

/** The Resource of a ResourceMetrics given as its fields without scope_metrics (null when it has none). */
export function resourceMetricsResource(fields: Uint8Array): Uint8Array | null {
  const r = new ProtoReader(fields);
  let resource: Uint8Array | null = null;
  r.fields(r.end, (f, w) => {
    if (f === 1 && w === 2) {
      const end = r.submessageEnd();
      resource = fields.subarray(r.pos, end);
      r.pos = end;
    } else r.skip(w);
  });
  return resource;
}

/** The name of a Metric given as its fields without the data ('' when it has none). */
export function metricNameOf(fields: Uint8Array): string {
  const r = new ProtoReader(fields);
  let name = '';
  r.fields(r.end, (f, w) => {
    if (f === 1 && w === 2) name = r.string();
    else r.skip(w);
  });
  return name;
}

/** The `device.id` attribute of the Resource ending at `end` ('' when it has none). */
export function resourceDeviceId(r: ProtoReader, end: number): string {
  let id = '';
  r.fields(end, (f, w) => {
    if (f !== 1 || w !== 2) return r.skip(w);
    let key = '';
    let value = '';
    r.fields(r.submessageEnd(), (kf, kw) => {
      if (kf === 1 && kw === 2) key = r.string();
      else if (kf === 2 && kw === 2) {
        r.fields(r.submessageEnd(), (af, aw) => {
          if (af === 1 && aw === 2) value = r.string();
          else r.skip(aw);
        });
      } else r.skip(kw);
    });
    if (key === ATTR_DEVICE_ID) id = value;
  });
  return id;
}

function scopeMetrics(r: ProtoReader, end: number, v: MetricsVisitor): void {
  r.fields(end, (f, w) => {
    if (f !== 2 || w !== 2) return r.skip(w);
    // Metric: the name may come after the data in a hostile or unusual encoding; note the data range, read on.
    const mEnd = r.submessageEnd();
    let name = '';
    let dataStart = -1;
    let dataEnd = -1;
    r.fields(mEnd, (mf, mw) => {
      if (mf === 1 && mw === 2) name = r.string();
      else if ((mf === 5 || mf === 7) && mw === 2) {
        dataEnd = r.submessageEnd();
        dataStart = r.pos;
        r.pos = dataEnd;
      } else r.skip(mw);
    });
    if (dataStart < 0) return;
    const after = r.pos;
    r.pos = dataStart;
    r.fields(dataEnd, (df, dw) => {
      if (df === 1 && dw === 2) numberPoint(r, r.submessageEnd(), name, v);
      else r.skip(dw);
    });
    r.pos = after;
  });
}

/** NumberDataPoint, read with a plain loop: this runs once per point, so no callback is allocated for it. */
function numberPoint(r: ProtoReader, end: number, metric: string, v: MetricsVisitor): void {
  let timeMs = 0;
  let value = NaN;
  const outer = r.end;
  r.end = end;
  while (r.pos < end) {
    const key = r.varint();
    if (key === 0x19)
      timeMs = r.fixed64Number() / 1e6; // time_unix_nano = 3, fixed64
    else if (key === 0x21)
      value = r.double(); // as_double = 4
    else if (key === 0x31)
      value = r.sfixed64Number(); // as_int = 6, sfixed64
    else r.skip(key & 7);
  }
  r.end = outer;
  if (!Number.isNaN(value)) v.point(metric, timeMs, value);
}

/**
 * The last `keep` log records of each ResourceLogs whose `device.id` `wanted` accepts, decoded, oldest first; every
 * other record is skipped by length. What it holds does not grow with the request: a flood of records costs one pass
 * and `keep` ranges per resource. A record that cannot be decoded (nested past the limit) is left out.
 */
export function lastLogRecords(
  bytes: Uint8Array,
  keep: number,
  wanted: (deviceId: string) => boolean,
): { deviceId: string; records: LogRecordJson[] }[] {
  const r = new ProtoReader(bytes);
  const out: { deviceId: string; records: LogRecordJson[] }[] = [];
  const scopes: number[] = [];
  while (r.pos < r.end) {
    const key = r.varint();
    if (key !== 0x0a) {
      r.skip(key & 7);
      continue;
    }
    const rlEnd = r.submessageEnd();
    let deviceId = '';
    scopes.length = 0;
    r.fields(rlEnd, (f, w) => {
      if (f === 1 && w === 2) deviceId = resourceDeviceId(r, r.submessageEnd());
      else if (f === 2 && w === 2) {
        const end = r.submessageEnd();
        scopes.push(r.pos, end);
        r.pos = end;
      } else r.skip(w);
    });
    const after = r.pos;
    if (deviceId !== '' && wanted(deviceId)) {
      const ring: number[] = []; // [start, end] of the last `keep` records, as a ring
      let n = 0;
      for (let i = 0; i < scopes.length; i += 2) {
        r.pos = scopes[i];
        r.fields(scopes[i + 1], (f, w) => {
          if (f !== 2 || w !== 2) return r.skip(w);
          const end = r.submessageEnd();
          const slot = (n++ % keep) * 2;
          ring[slot] = r.pos;
          ring[slot + 1] = end;
          r.pos = end;
        });
      }
      const records: LogRecordJson[] = [];
      const count = Math.min(n, keep);
      for (let k = n - count; k < n; k++) {
        const slot = (k % keep) * 2;
        r.pos = ring[slot];
        try {
          records.push(logRecord(r, ring[slot + 1]));
        } catch {
          // nested past the limit, or malformed within: not an event worth keeping
        }
      }
      if (records.length > 0) out.push({ deviceId, records });
    }
    r.pos = after;
  }
  return out;
}
