import { ProtoReader } from '../../otlp/reader.js';
import { Wire } from '../../otlp/writer.js';
import { ByteSink, diff64 } from './bytes.js';
import {
  advanceTime,
  decimalExponent,
  F,
  keyOf,
  POW10,
  putDelta,
  SAFE_HI,
  scratch,
  SMALL,
  type Columns,
} from './columns.js';
import type { Plan } from './metrics-plan.js';
import { Kind, type DictKind, type StreamState } from './state.js';

/**
 * An OTLP ExportMetricsServiceRequest as columns, against the stream's state (state.ts), and back
 * (metrics-column-decoder.ts).
 *
 * What repeats is sent once per stream and then referenced: the bytes of each ResourceMetrics but its scope_metrics
 * (the resource, schema_url), of each ScopeMetrics but its metrics, of each Metric but its points (name, unit,
 * description, type, temporality, monotonicity) and of each point's attributes. These are copied, never parsed into
 * values, so they come back exactly. Points become columns:
 *
 *   S  structure   counts, dictionary references, one flags varint per point
 *   T  time        time_unix_nano as the delta of its delta against the series (in ms when whole ms, else ns);
 *                  nothing when equal to the previous point's of the same resource (a reading's metrics share it);
 *                  start_time_unix_nano as a delta against the series'
 *   V  values      ints as the delta against the series; doubles that are decimals (v = m / 10^e exactly) as the
 *                  delta of the mantissa at the series' exponent; any other double as its bits XOR the last (Gorilla)
 *   D  dictionary  bytes of new dictionary entries
 *
 * A request holding anything else — histograms, summaries, exemplars, flags — is not put in columns: the frame
 * carries it as it is (frame-codec.ts), so nothing is ever approximated.
 */
/** Encodes a request planned by planMetrics into the columns, changing `state` as the decoder will. */
export class MetricsColumnEncoder {
  private readonly header = new ByteSink(1024);
  private readonly other = new ByteSink(256);
  private readonly attrs = new ByteSink(256);
  /** [start, end) pairs of the child messages found by the last split. */
  private children: number[] = [];

  constructor(
    private readonly state: StreamState,
    private readonly c: Columns,
  ) {}

  encode(req: Uint8Array, plan: Plan): void {
    const r = new ProtoReader(req);
    let ci = 0;
    const s = this.c.s;
    s.varint(plan.counts[ci++]);
    r.fields(r.end, () => {
      const rmEnd = r.submessageEnd();
      const res = this.ref('resource', this.split(r, rmEnd, 2));
      const scopes = this.children;
      s.varint(plan.counts[ci++]);
      for (let i = 0; i < scopes.length; i += 2) {
        r.pos = scopes[i];
        const scope = this.ref('scope', this.split(r, scopes[i + 1], 2));
        const metrics = this.children;
        s.varint(plan.counts[ci++]);
        const prev: [number, number] = [-1, -1];
        for (let j = 0; j < metrics.length; j += 2) {
          r.pos = metrics[j];
          const metric = this.ref('metric', this.metricHeader(r, metrics[j + 1]));
          const points = this.children;
          s.varint(plan.counts[ci++]);
          for (let k = 0; k < points.length; k += 2) {
            r.pos = points[k];
            this.point(r, points[k + 1], res, scope, metric, prev);
          }
        }
      }
      r.pos = rmEnd;
    });
  }

  /**
   * Copies the fields of [pos, end) other than `child` into `into` (default: the header sink) and returns them;
   * the ranges of the `child` messages become `children` (a new array: the caller walks it while splitting below).
   */
  private split(r: ProtoReader, end: number, child: number, into = this.header): Uint8Array {
    into.reset();
    const children: number[] = [];
    let at = r.pos;
    r.fields(end, (f, w) => {
      if (f === child && w === Wire.LDELIM) {
        const e = r.submessageEnd();
        children.push(r.pos, e);
        r.pos = e;
      } else {
        r.skip(w);
        into.bytes(r.buf.subarray(at, r.pos));
      }
      at = r.pos;
    });
    this.children = children;
    return into.view();
  }

  /** [kind 5|7][varint n][n bytes: Metric fields but the data][the data's fields but its points]; points → children. */
  private metricHeader(r: ProtoReader, end: number): Uint8Array {
    const other = this.other;
    other.reset();
    let kind = 0;
    let dataStart = 0;
    let dataEnd = 0;
    let at = r.pos;
    r.fields(end, (f, w) => {
      if (f === 5 || f === 7) {
        kind = f;
        dataEnd = r.submessageEnd();
        dataStart = r.pos;
        r.pos = dataEnd;
      } else {
        r.skip(w);
        other.bytes(r.buf.subarray(at, r.pos));
      }
      at = r.pos;
    });
    r.pos = dataStart;
    const rest = this.split(r, dataEnd, 1, this.attrs);
    const h = this.header;
    h.reset();
    h.byte(kind);
    h.varint(other.pos);
    h.bytes(other.view());
    h.bytes(rest);
    return h.view();
  }

  /** S: 0 then the new entry (length in S, bytes in D), or index + 1. */
  private ref(kind: DictKind, bytes: Uint8Array): number {
    const key = keyOf(bytes);
    const i = this.state.dict(kind).find(key);
    if (i >= 0) {
      this.c.s.varint(i + 1);
      return i;
    }
    this.c.s.varint(0);
    this.c.s.varint(bytes.length);
    this.c.d.bytes(bytes);
    return this.state.addEntry(kind, key, bytes.slice());
  }

  /** One NumberDataPoint; `prev` is the time of the resource's previous point (updated). */
  private point(r: ProtoReader, end: number, res: number, scope: number, metric: number, prev: [number, number]): void {
    const a = this.attrs;
    a.reset();
    let flags = 0;
    let tLo = 0;
    let tHi = 0;
    let sLo = 0;
    let sHi = 0;
    let vLo = 0;
    let vHi = 0;
    let at = r.pos;
    const buf = r.buf;
    r.fields(end, (f, w) => {
      if (f === 7) {
        r.skip(w);
        a.bytes(buf.subarray(at, r.pos));
        flags |= F.ATTRS;
      } else {
        const p = r.pos;
        r.skip(w); // FIXED64, checked by the plan
        const lo = (buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16) | (buf[p + 3] << 24)) >>> 0;
        const hi = (buf[p + 4] | (buf[p + 5] << 8) | (buf[p + 6] << 16) | (buf[p + 7] << 24)) >>> 0;
        if (f === 3) {
          flags |= F.TIME;
          tLo = lo;
          tHi = hi;
        } else if (f === 2) {
          flags |= F.START;
          sLo = lo;
          sHi = hi;
        } else {
          flags |= f === 6 ? Kind.INT : Kind.DOUBLE;
          vLo = lo;
          vHi = hi;
        }
      }
      at = r.pos;
    });
    // The attribute entry is added before the series is looked up, in the order the decoder does it.
    let attrs = -1;
    let newAttrs: Uint8Array | null = null;
    if (flags & F.ATTRS) {
      const key = keyOf(a.view());
      attrs = this.state.attrs.find(key);
      if (attrs < 0) attrs = this.state.addEntry('attrs', key, (newAttrs = a.view().slice()));
    }
    const series = this.state.seriesOf(res, scope, metric, attrs);
    const { t, v } = this.c;
    if (flags & F.TIME) {
      if (tLo === prev[0] && tHi === prev[1]) flags |= F.SAME_TIME;
      else {
        const d = series.hasTime ? diff64(tLo, tHi, series.tLo, series.tHi) : SMALL;
        putDelta(t, Math.abs(d) < SMALL ? d - series.tDelta : SMALL, tLo, tHi);
      }
      advanceTime(series, tLo, tHi);
      prev[0] = tLo;
      prev[1] = tHi;
    }
    if (flags & F.START) {
      putDelta(t, diff64(sLo, sHi, series.sLo, series.sHi), sLo, sHi);
      series.sLo = sLo;
      series.sHi = sHi;
    }
    const kind = flags & F.KIND;
    if (kind === Kind.INT) {
      const hs = vHi | 0;
      const d = hs >= -SAFE_HI && hs < SAFE_HI ? hs * 4294967296 + vLo - series.int : SMALL;
      if (Math.abs(d) < SMALL) {
        v.zigzag(d);
        series.int += d;
      } else {
        flags |= F.RAW;
        v.u64(vLo, vHi);
      }
    } else if (kind === Kind.DOUBLE) {
      scratch.setUint32(0, vLo, true);
      scratch.setUint32(4, vHi, true);
      const value = scratch.getFloat64(0, true);
      const e = decimalExponent(value, series.exp);
      const m = e >= 0 ? Math.round(value * POW10[e]) : 0;
      if (e >= 0 && e === series.exp && Math.abs(m - series.mant) < SMALL) v.zigzag(m - series.mant);
      else if (e >= 0) {
        flags |= F.NEW_EXP;
        v.byte(e);
        v.zigzag(m);
      } else {
        flags |= F.RAW;
        v.u64((vLo ^ series.dLo) >>> 0, (vHi ^ series.dHi) >>> 0);
      }
      series.exp = e;
      series.mant = m;
      series.dLo = vLo;
      series.dHi = vHi;
    }
    const s = this.c.s;
    s.varint(flags);
    if (flags & F.ATTRS) {
      if (newAttrs !== null) {
        s.varint(0);
        s.varint(newAttrs.length);
        this.c.d.bytes(newAttrs);
      } else s.varint(attrs + 1);
    }
  }
}
