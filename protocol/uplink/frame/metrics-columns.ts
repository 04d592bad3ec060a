import { ProtoReader } from '../../otlp/reader.js';
import { Wire } from '../../otlp/writer.js';
import { ByteSink, diff64 } from './bytes.js';
import { advanceTime, decimalExponent, F, POW10, putDelta, SAFE_HI, scratch, SMALL, type Columns } from './columns.js';
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
  /** [start, end) pairs of the child messages of the message split last at each depth (kept, not reallocated). */
  private readonly scopes = new Ranges();
  private readonly metrics = new Ranges();
  private readonly points = new Ranges();
  /** The time of the resource's previous point (a reading's metrics share it). */
  private readonly prev: [number, number] = [-1, -1];

  constructor(
    private readonly state: StreamState,
    private readonly c: Columns,
  ) {}

  // The walks loop over keys rather than take ProtoReader.fields callbacks, and copy byte ranges rather than take
  // views of them: either would allocate per point, and at field load (a point per metric per device per batch)
  // that was most of what the agent allocated.
  encode(req: Uint8Array, plan: Plan): void {
    const r = new ProtoReader(req);
    let ci = 0;
    const s = this.c.s;
    const { scopes, metrics, points, prev } = this;
    s.varint(plan.counts[ci++]);
    while (r.pos < r.end) {
      r.key(); // resource_metrics: checked by the plan
      const rmEnd = r.submessageEnd();
      this.split(r, rmEnd, 2, this.header, scopes);
      const res = this.ref('resource', this.header);
      s.varint(plan.counts[ci++]);
      for (let i = 0; i < scopes.n; i += 2) {
        r.pos = scopes.at[i];
        this.split(r, scopes.at[i + 1], 2, this.header, metrics);
        const scope = this.ref('scope', this.header);
        s.varint(plan.counts[ci++]);
        prev[0] = prev[1] = -1;
        for (let j = 0; j < metrics.n; j += 2) {
          r.pos = metrics.at[j];
          this.metricHeader(r, metrics.at[j + 1]);
          const metric = this.ref('metric', this.header);
          s.varint(plan.counts[ci++]);
          for (let k = 0; k < points.n; k += 2) {
            r.pos = points.at[k];
            this.point(r, points.at[k + 1], res, scope, metric, prev);
          }
        }
      }
      r.pos = rmEnd;
    }
  }

  /**
   * Copies the fields of [pos, end) other than `child` into `into` (reset first); the ranges of the `child` messages
   * go to `children` (one array per depth: the caller walks it while splitting below).
   */
  private split(r: ProtoReader, end: number, child: number, into: ByteSink, children: Ranges): void {
    into.reset();
    children.n = 0;
    const childKey = (child << 3) | Wire.LDELIM;
    const outer = r.enter(end);
    while (r.pos < end) {
      const at = r.pos;
      const key = r.key();
      if (key === childKey) {
        const e = r.submessageEnd();
        children.add(r.pos, e);
        r.pos = e;
      } else {
        r.skip(key & 7);
        into.copy(r.buf, at, r.pos);
      }
    }
    r.leave(outer);
  }

  /**
   * The header sink becomes [kind 5|7][varint n][n bytes: Metric fields but the data][the data's fields but its
   * points]; the points' ranges go to `points`.
   */
  private metricHeader(r: ProtoReader, end: number): void {
    const other = this.other;
    other.reset();
    let kind = 0;
    let dataStart = 0;
    let dataEnd = 0;
    const outer = r.enter(end);
    while (r.pos < end) {
      const at = r.pos;
      const key = r.key();
      const f = Math.floor(key / 8);
      if (f === 5 || f === 7) {
        kind = f;
        dataEnd = r.submessageEnd();
        dataStart = r.pos;
        r.pos = dataEnd;
      } else {
        r.skip(key & 7);
        other.copy(r.buf, at, r.pos);
      }
    }
    r.leave(outer);
    r.pos = dataStart;
    const rest = this.attrs;
    this.split(r, dataEnd, 1, rest, this.points);
    const h = this.header;
    h.reset();
    h.byte(kind);
    h.varint(other.pos);
    h.copy(other.buf, 0, other.pos);
    h.copy(rest.buf, 0, rest.pos);
  }

  /** S: 0 then the new entry (length in S, bytes in D), or index + 1. The entry is what `sink` holds. */
  private ref(kind: DictKind, sink: ByteSink): number {
    const i = this.state.dict(kind).find(sink.buf, 0, sink.pos);
    if (i >= 0) {
      this.c.s.varint(i + 1);
      return i;
    }
    this.c.s.varint(0);
    this.c.s.varint(sink.pos);
    this.c.d.copy(sink.buf, 0, sink.pos);
    return this.state.addEntry(kind, sink.buf.slice(0, sink.pos));
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
    const buf = r.buf;
    const outer = r.enter(end);
    while (r.pos < end) {
      const at = r.pos;
      const key = r.key();
      const f = Math.floor(key / 8);
      if (f === 7) {
        r.skip(key & 7);
        a.copy(buf, at, r.pos);
        flags |= F.ATTRS;
        continue;
      }
      const p = r.pos;
      r.skip(key & 7); // FIXED64, checked by the plan
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
    r.leave(outer);
    // The attribute entry is added before the series is looked up, in the order the decoder does it.
    let attrs = -1;
    let newAttrs: Uint8Array | null = null;
    if (flags & F.ATTRS) {
      attrs = this.state.attrs.find(a.buf, 0, a.pos);
      if (attrs < 0) attrs = this.state.addEntry('attrs', (newAttrs = a.buf.slice(0, a.pos)));
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

/** Pairs of positions, reused: emptied by `n = 0`, which keeps the array (setting `length = 0` would free it). */
class Ranges {
  readonly at: number[] = [];
  n = 0;

  add(start: number, end: number): void {
    if (this.n + 2 > this.at.length) this.at.push(0, 0);
    this.at[this.n++] = start;
    this.at[this.n++] = end;
  }
}
