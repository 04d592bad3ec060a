import { ProtoReader } from '../../otlp/reader.js';
import { ProtoWriter, Wire } from '../../otlp/writer.js';
import { ByteSink, ByteSource, corrupt, diff64 } from './bytes.js';
import {
  advanceTime,
  decimalExponent,
  F,
  getDelta,
  keyOf,
  MAX_EXP,
  POW10,
  putDelta,
  SAFE_HI,
  scratch,
  SMALL,
  splitInt,
  type ColumnSources,
  type Columns,
} from './columns.js';
import type { Plan } from './metrics-plan.js';
import { Kind, type DictKind, type StreamState } from './state.js';
import { metricNameOf, resourceMetricsDeviceId, type MetricsVisitor } from '../../otlp/visit.js';

/**
 * An OTLP ExportMetricsServiceRequest as columns, against the stream's state (state.ts), and back.
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

/**
 * Rebuilds, from the columns, the request the encoder was given; `maxBytes` bounds what it may grow to. Or, given a
 * MetricsVisitor, tells it the request's resources and number points as visitMetricsRequest would over the rebuilt
 * request (the same device ids, names, times and values), without building it.
 */
export class MetricsColumnDecoder {
  private readonly w = new ProtoWriter(64 * 1024);
  private readonly t64: [number, number] = [0, 0];
  /** The point last read: its attributes entry, flags, time, start and value halves. */
  private attrs = -1;
  private flags = 0;
  private tLo = 0;
  private tHi = 0;
  private sLo = 0;
  private sHi = 0;
  private vLo = 0;
  private vHi = 0;

  constructor(private readonly state: StreamState) {}

  decode(c: ColumnSources, maxBytes: number, visitor: MetricsVisitor | null = null): Uint8Array {
    const w = this.w.reset();
    const { s } = c;
    const st = this.state;
    const nRes = s.bounded(s.left, 'resource count');
    for (let i = 0; i < nRes; i++) {
      const res = this.ref(c, 'resource');
      if (visitor) visitor.resource((st.deviceIds[res] ??= resourceMetricsDeviceId(st.resource.get(res))));
      else {
        w.fork(1);
        w.raw(st.resource.get(res));
      }
      const nScopes = s.bounded(s.left, 'scope count');
      for (let j = 0; j < nScopes; j++) {
        const scope = this.ref(c, 'scope');
        if (!visitor) {
          w.fork(2);
          w.raw(st.scope.get(scope));
        }
        const nMetrics = s.bounded(s.left, 'metric count');
        const prev: [number, number] = [-1, -1];
        for (let k = 0; k < nMetrics; k++) {
          const metric = this.ref(c, 'metric');
          const hs = new ByteSource(st.metric.get(metric));
          const kind = hs.byte();
          if (kind !== 5 && kind !== 7) corrupt(`metric entry of kind ${kind}`);
          const other = hs.bytes(hs.bounded(hs.left, 'metric header length'));
          const name = visitor ? (st.metricNames[metric] ??= metricNameOf(other)) : '';
          if (!visitor) {
            w.fork(2);
            w.raw(other);
            w.fork(kind);
          }
          const nPoints = s.bounded(s.left, 'point count');
          for (let p = 0; p < nPoints; p++) {
            this.point(c, res, scope, metric, prev);
            if (visitor) this.visitPoint(visitor, name);
            else {
              this.writePoint();
              if (w.pos > maxBytes) corrupt(`segment inflates past ${maxBytes} bytes`);
            }
          }
          if (!visitor) {
            w.raw(hs.bytes(hs.left));
            w.join();
            w.join();
          }
        }
        if (!visitor) w.join();
      }
      if (!visitor) w.join();
    }
    return visitor ? EMPTY : w.finish();
  }

  private ref(c: ColumnSources, kind: DictKind): number {
    const code = c.s.varint();
    if (code > 0) {
      this.state.dict(kind).get(code - 1); // checks the range
      return code - 1;
    }
    const bytes = c.d.bytes(c.s.bounded(c.d.left, 'entry length')).slice();
    return this.state.addEntry(kind, keyOf(bytes), bytes);
  }

  /** Reads one point into the fields above, moving its series on as the encoder did. */
  private point(c: ColumnSources, res: number, scope: number, metric: number, prev: [number, number]): void {
    const flags = (this.flags = c.s.varint());
    if (flags >= 256) corrupt(`point flags ${flags}`);
    const attrs = (this.attrs = flags & F.ATTRS ? this.ref(c, 'attrs') : -1);
    const series = this.state.seriesOf(res, scope, metric, attrs);
    const out = this.t64;
    if (flags & F.TIME) {
      if (flags & F.SAME_TIME) {
        if (prev[0] < 0) corrupt('a point repeats a time no point before it had');
        this.tLo = prev[0];
        this.tHi = prev[1];
      } else {
        // The delta of the delta: the series' last delta is added back.
        getDelta(c.t, series.tLo, series.tHi, series.tDelta, out);
        this.tLo = out[0];
        this.tHi = out[1];
      }
    }
    if (flags & F.START) {
      getDelta(c.t, series.sLo, series.sHi, 0, out);
      this.sLo = series.sLo = out[0];
      this.sHi = series.sHi = out[1];
    }
    if (flags & F.TIME) {
      advanceTime(series, this.tLo, this.tHi);
      prev[0] = this.tLo;
      prev[1] = this.tHi;
    }
    const kind = flags & F.KIND;
    const v = c.v;
    if (kind === Kind.INT) {
      if (flags & F.RAW) v.u64(out);
      else {
        series.int += v.zigzag();
        splitInt(series.int, out);
      }
    } else if (kind === Kind.DOUBLE) {
      if (flags & F.RAW) {
        v.u64(out);
        out[0] = (out[0] ^ series.dLo) >>> 0;
        out[1] = (out[1] ^ series.dHi) >>> 0;
        series.exp = -1;
        series.mant = 0;
      } else {
        let m: number;
        if (flags & F.NEW_EXP) {
          const e = v.byte();
          if (e > MAX_EXP) corrupt(`decimal exponent ${e}`);
          series.exp = e;
          m = v.zigzag();
        } else {
          if (series.exp < 0) corrupt('a decimal delta on a series without an exponent');
          m = series.mant + v.zigzag();
        }
        series.mant = m;
        scratch.setFloat64(0, m / POW10[series.exp], true);
        out[0] = scratch.getUint32(0, true);
        out[1] = scratch.getUint32(4, true);
      }
      series.dLo = out[0];
      series.dHi = out[1];
    } else if (kind !== Kind.NONE) corrupt(`value kind ${kind}`);
    this.vLo = out[0];
    this.vHi = out[1];
  }

  /** The point last read as a NumberDataPoint, fields in the order the agent writes them. */
  private writePoint(): void {
    const w = this.w;
    const flags = this.flags;
    w.fork(1);
    if (this.attrs >= 0) w.raw(this.state.attrs.get(this.attrs));
    if (flags & F.START) {
      w.tag(2, Wire.FIXED64);
      w.fixed64(this.sHi, this.sLo);
    }
    if (flags & F.TIME) {
      w.tag(3, Wire.FIXED64);
      w.fixed64(this.tHi, this.tLo);
    }
    const kind = flags & F.KIND;
    if (kind !== Kind.NONE) {
      w.tag(kind === Kind.INT ? 6 : 4, Wire.FIXED64);
      w.fixed64(this.vHi, this.vLo);
    }
    w.join();
  }

  /** The point last read as visitMetricsRequest reports it: time_unix_nano / 1e6, the value, NaN skipped. */
  private visitPoint(visitor: MetricsVisitor, name: string): void {
    const kind = this.flags & F.KIND;
    if (kind === Kind.NONE) return;
    let value: number;
    if (kind === Kind.INT) value = (this.vHi | 0) * 4294967296 + this.vLo;
    else {
      scratch.setUint32(0, this.vLo, true);
      scratch.setUint32(4, this.vHi, true);
      value = scratch.getFloat64(0, true);
    }
    if (Number.isNaN(value)) return;
    const timeMs = this.flags & F.TIME ? (this.tHi * 4294967296 + this.tLo) / 1e6 : 0;
    visitor.point(name, timeMs, value);
  }
}

const EMPTY = new Uint8Array(0);
