import { ProtoReader } from '../../otlp/reader.js';
import { Wire } from '../../otlp/writer.js';

/**
 * The first walk over an ExportMetricsServiceRequest before it is coded as columns (metrics-columns.ts): its counts
 * in walk order, or that it holds something the columns do not carry.
 */

/** Counts met while planning a request, in walk order, and totals for StreamState.nearLimits. */
export interface Plan {
  counts: number[];
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
  plan.counts.length = 0;
  plan.resources = plan.scopes = plan.metrics = plan.points = 0;
  const r = new ProtoReader(req);
  try {
    const top = plan.counts.push(0) - 1;
    r.fields(r.end, (f, w) => {
      if (f !== 1 || w !== Wire.LDELIM) throw UNSUPPORTED;
      plan.counts[top]++;
      plan.resources++;
      const rmEnd = r.submessageEnd();
      const scopesAt = plan.counts.push(0) - 1;
      r.fields(rmEnd, (rf, rw) => {
        if (rf !== 2 || rw !== Wire.LDELIM) return r.skip(rw);
        plan.counts[scopesAt]++;
        plan.scopes++;
        const smEnd = r.submessageEnd();
        const metricsAt = plan.counts.push(0) - 1;
        r.fields(smEnd, (sf, sw) => {
          if (sf !== 2 || sw !== Wire.LDELIM) return r.skip(sw);
          plan.counts[metricsAt]++;
          plan.metrics++;
          planMetric(r, r.submessageEnd(), plan);
        });
      });
    });
    return true;
  } catch (e) {
    if (e === UNSUPPORTED || (e as { code?: string }).code !== undefined) return false;
    throw e;
  }
}

function planMetric(r: ProtoReader, end: number, plan: Plan): void {
  let data = 0;
  const pointsAt = plan.counts.push(0) - 1;
  r.fields(end, (f, w) => {
    if (f === 5 || f === 7) {
      if (data !== 0 || w !== Wire.LDELIM) throw UNSUPPORTED;
      data = f;
      r.fields(r.submessageEnd(), (df, dw) => {
        if (df !== 1) return r.skip(dw);
        if (dw !== Wire.LDELIM) throw UNSUPPORTED;
        plan.counts[pointsAt]++;
        plan.points++;
        let value = 0;
        let time = 0;
        let start = 0;
        r.fields(r.submessageEnd(), (pf, pw) => {
          if (pf === 7 && pw === Wire.LDELIM) return r.skip(pw);
          if (pw !== Wire.FIXED64) throw UNSUPPORTED;
          if (pf === 4 || pf === 6) value++;
          else if (pf === 3) time++;
          else if (pf === 2) start++;
          else throw UNSUPPORTED; // exemplars, flags, fields this codec does not know
          r.skip(pw);
        });
        if (value > 1 || time > 1 || start > 1) throw UNSUPPORTED;
      });
    } else if (f === 9 || f === 10 || f === 11) throw UNSUPPORTED;
    else r.skip(w);
  });
  if (data === 0) throw UNSUPPORTED; // a metric without data: rare enough to send as it is
}
