import { ProtoWriter, Wire } from '../../otlp/writer.js';
import {
  metricNameOf,
  resourceMetricsDeviceId,
  resourceMetricsResource,
  type MetricsVisitor,
} from '../../otlp/visit.js';
import { ByteSource, corrupt } from './bytes.js';
import { advanceTime, F, getDelta, MAX_EXP, POW10, scratch, splitInt, type ColumnSources } from './columns.js';
import { Kind, type DictKind, type StreamState } from './state.js';

/** The decoding side of metrics-columns.ts (the layout is described there). */

/**
 * Rebuilds, from the columns, the request the encoder was given; `maxBytes` bounds what it may grow to. Or, given a
 * MetricsVisitor, tells it the request's resources and number points as visitMetricsRequest would over the rebuilt
 * request (the same device ids, names, times and values), without building it — or while building it (`rebuild`),
 * in one pass, when both are wanted.
 */
export class MetricsColumnDecoder {
  private readonly w = new ProtoWriter(64 * 1024);
  private readonly t64: [number, number] = [0, 0];
  /** The time of the resource's previous point (a reading's metrics share it). */
  private readonly prev: [number, number] = [-1, -1];
  /** The point last read: its attributes entry, flags, time, start and value halves. */
  private attrs = -1;
  private flags = 0;
  private tLo = 0;
  private tHi = 0;
  private sLo = 0;
  private sHi = 0;
  private vLo = 0;
  private vHi = 0;
  /** Bytes the last segment decoded to, or would have as OTLP when visited (20 a point, the least one takes). */
  size = 0;

  constructor(private readonly state: StreamState) {}

  decode(c: ColumnSources, maxBytes: number, visitor: MetricsVisitor | null = null, rebuild = false): Uint8Array {
    const w = this.w.reset();
    const write = visitor === null || rebuild;
    const { s } = c;
    const st = this.state;
    const nRes = s.bounded(s.left, 'resource count');
    let visited = 0;
    for (let i = 0; i < nRes; i++) {
      const res = this.ref(c, 'resource');
      if (visitor) {
        const id = (st.deviceIds[res] ??= resourceMetricsDeviceId(st.resource.get(res)));
        if (st.resources[res] === undefined) st.resources[res] = resourceMetricsResource(st.resource.get(res));
        visitor.resource(id, st.resources[res]);
      }
      if (write) {
        w.fork(1);
        w.raw(st.resource.get(res));
      }
      const nScopes = s.bounded(s.left, 'scope count');
      for (let j = 0; j < nScopes; j++) {
        const scope = this.ref(c, 'scope');
        if (write) {
          w.fork(2);
          w.raw(st.scope.get(scope));
        }
        const nMetrics = s.bounded(s.left, 'metric count');
        const prev = this.prev;
        prev[0] = prev[1] = -1;
        for (let k = 0; k < nMetrics; k++) {
          const metric = this.ref(c, 'metric');
          const entry = st.metric.get(metric);
          const parts = st.metricParts;
          if ((parts[metric * 3] ?? 0) === 0) readMetricEntry(entry, metric, parts);
          const kind = parts[metric * 3];
          const otherStart = parts[metric * 3 + 1];
          const otherEnd = parts[metric * 3 + 2];
          const name = visitor ? (st.metricNames[metric] ??= metricNameOf(entry.subarray(otherStart, otherEnd))) : '';
          if (write) {
            w.fork(2);
            w.rawRange(entry, otherStart, otherEnd);
            w.fork(kind);
          }
          const nPoints = s.bounded(s.left, 'point count');
          for (let p = 0; p < nPoints; p++) {
            this.point(c, res, scope, metric, prev);
            if (visitor) {
              this.visitPoint(visitor, name);
              // The same bound as for rebuilt OTLP, so a frame of tiny points cannot make the visitor hold more.
              if ((visited += MIN_POINT_BYTES) > maxBytes) corrupt(`segment inflates past ${maxBytes} bytes`);
            }
            if (write) {
              this.writePoint();
              if (w.pos > maxBytes) corrupt(`segment inflates past ${maxBytes} bytes`);
            }
          }
          if (write) {
            w.rawRange(entry, otherEnd, entry.length);
            w.join();
            w.join();
          }
        }
        if (write) w.join();
      }
      if (write) w.join();
    }
    if (!write) {
      this.size = visited;
      return EMPTY;
    }
    this.size = w.pos;
    return w.finish();
  }

  private ref(c: ColumnSources, kind: DictKind): number {
    const code = c.s.varint();
    if (code > 0) {
      this.state.dict(kind).get(code - 1); // checks the range
      return code - 1;
    }
    const bytes = c.d.bytes(c.s.bounded(c.d.left, 'entry length')).slice();
    return this.state.addEntry(kind, bytes);
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

/**
 * Reads metric entry `i` apart into parts[3i…3i+2]: [kind 5|7][varint n][n bytes: the Metric's other fields][the
 * data's other fields]. Kind 0 (never an entry's) marks one not read yet.
 */
function readMetricEntry(entry: Uint8Array, i: number, parts: number[]): void {
  const hs = new ByteSource(entry);
  const kind = hs.byte();
  if (kind !== 5 && kind !== 7) corrupt(`metric entry of kind ${kind}`);
  const n = hs.bounded(hs.left, 'metric header length');
  while (parts.length < i * 3) parts.push(0, 0, 0);
  parts[i * 3] = kind;
  parts[i * 3 + 1] = hs.pos;
  parts[i * 3 + 2] = hs.pos + n;
}

const EMPTY = new Uint8Array(0);
/** A NumberDataPoint with a time and a value takes at least this many bytes of OTLP (with its tag and length). */
const MIN_POINT_BYTES = 20;
