import { ProtoReader } from '../../otlp/reader.js';
import { Wire } from '../../otlp/writer.js';

/**
 * The first walk over an ExportMetricsServiceRequest before it is coded as columns (metrics-columns.ts): its counts
 * in walk order, or that it holds something the columns do not carry.
 */

/** Counts met while planning a request, in walk order, and totals for StreamState.nearLimits. */
export interface Plan {
  /** The counts are counts[0, n): the array is kept from plan to plan (emptying it with `length = 0` frees it). */
  counts: number[];
  n: number;
  resources: number;
  scopes: number;
  metrics: number;
  points: number;
}

class Unsupported extends Error {}
const UNSUPPORTED = new Unsupported();

/**
 * Walks a request and records its counts; false when it holds something the columns do not carry (or is not a
 * well-formed request), in which case it is sent as it is.
 */
export function planMetrics(req: Uint8Array, plan: Plan): boolean {
  plan.n = 0;
  plan.resources = plan.scopes = plan.metrics = plan.points = 0;
  const r = new ProtoReader(req);
  try {
    // Loops over keys, not ProtoReader.fields: a callback per submessage would be a closure per point.
    const top = slot(plan);
    while (r.pos < r.end) {
      if (r.key() !== RESOURCE_METRICS) throw UNSUPPORTED;
      plan.counts[top]++;
      plan.resources++;
      const scopesAt = slot(plan);
      const rmEnd = r.submessageEnd();
      const rm = r.enter(rmEnd);
      while (r.pos < rmEnd) {
        const key = r.key();
        if (key !== SCOPE_METRICS) {
          r.skip(key & 7);
          continue;
        }
        plan.counts[scopesAt]++;
        plan.scopes++;
        const metricsAt = slot(plan);
        const smEnd = r.submessageEnd();
        const sm = r.enter(smEnd);
        while (r.pos < smEnd) {
          const mkey = r.key();
          if (mkey !== METRIC) {
            r.skip(mkey & 7);
            continue;
          }
          plan.counts[metricsAt]++;
          plan.metrics++;
          planMetric(r, r.submessageEnd(), plan);
        }
        r.leave(sm);
      }
      r.leave(rm);
    }
    return true;
  } catch (e) {
    if (e === UNSUPPORTED || (e as { code?: string }).code !== undefined) return false;
    throw e;
  }
}

/** Field keys (number × 8 + wire type) the walks compare against. */
const RESOURCE_METRICS = (1 << 3) | Wire.LDELIM;
const SCOPE_METRICS = (2 << 3) | Wire.LDELIM;
const METRIC = (2 << 3) | Wire.LDELIM;
const DATA_POINT = (1 << 3) | Wire.LDELIM;

function planMetric(r: ProtoReader, end: number, plan: Plan): void {
  let data = 0;
  const pointsAt = slot(plan);
  const outer = r.enter(end);
  while (r.pos < end) {
    const key = r.key();
    const f = Math.floor(key / 8);
    const w = key & 7;
    if (f === 9 || f === 10 || f === 11) throw UNSUPPORTED;
    if (f !== 5 && f !== 7) {
      r.skip(w);
      continue;
    }
    if (data !== 0 || w !== Wire.LDELIM) throw UNSUPPORTED;
    data = f;
    const dataEnd = r.submessageEnd();
    const d = r.enter(dataEnd);
    while (r.pos < dataEnd) {
      const dkey = r.key();
      if (dkey !== DATA_POINT) {
        if (Math.floor(dkey / 8) === 1) throw UNSUPPORTED;
        r.skip(dkey & 7);
        continue;
      }
      plan.counts[pointsAt]++;
      plan.points++;
      planPoint(r, r.submessageEnd());
    }
    r.leave(d);
  }
  r.leave(outer);
  if (data === 0) throw UNSUPPORTED; // a metric without data: rare enough to send as it is
}

function planPoint(r: ProtoReader, end: number): void {
  let value = 0;
  let time = 0;
  let start = 0;
  const outer = r.enter(end);
  while (r.pos < end) {
    const key = r.key();
    const f = Math.floor(key / 8);
    const w = key & 7;
    if (f === 7 && w === Wire.LDELIM) {
      r.skip(w);
      continue;
    }
    if (w !== Wire.FIXED64) throw UNSUPPORTED;
    if (f === 4 || f === 6) value++;
    else if (f === 3) time++;
    else if (f === 2) start++;
    else throw UNSUPPORTED; // exemplars, flags, fields this codec does not know
    r.skip(w);
  }
  r.leave(outer);
  if (value > 1 || time > 1 || start > 1) throw UNSUPPORTED;
}

/** A new count (0) at the end of the plan's counts; its index. */
function slot(plan: Plan): number {
  if (plan.n === plan.counts.length) plan.counts.push(0);
  else plan.counts[plan.n] = 0;
  return plan.n++;
}
