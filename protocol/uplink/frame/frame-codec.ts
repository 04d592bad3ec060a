import { Signal } from '../../otlp/signal.js';
import { ByteSink, ByteSource, corrupt } from './bytes.js';
import { MetricsColumnEncoder } from './metrics-columns.js';
import { MetricsColumnDecoder } from './metrics-column-decoder.js';
import type { Columns } from './columns.js';
import { planMetrics, type Plan } from './metrics-plan.js';
import { StreamState } from './state.js';
import type { MetricsVisitor } from '../../otlp/visit.js';

/**
 * One frame of an uplink stream: the stored batches (segments) it carries, coded against the state both ends keep
 * for the stream (state.ts), before the stream's compression (stream.ts).
 *
 *   frame    [varint segments][varint |S|][varint |T|][varint |V|][varint |D|] S T V D
 *   segment  in S: [1 flags: kind (low 7 bits) | 0x80 = start the state over first][zigzag seq − previous seq]
 *                  [1 signal][varint points], then
 *            kind 0 (as it is):   [varint n] in S, the n bytes of the OTLP request in D
 *            kind 1 (columns):    an ExportMetricsServiceRequest as columns (metrics-columns.ts)
 *
 * Segments keep their stored batch's seq, so the receiver deduplicates each exactly as if it came alone, however the
 * sender grouped them. Logs, and metrics the columns do not carry, travel as they are (the stream's compression
 * still finds what repeats in them).
 */

export const FRAME_FORMAT = 1;

export interface Segment {
  /** The stored batch's seq (per agent). */
  seq: number;
  signal: Signal;
  /** Data points or log records, as stored. */
  points: number;
  /** The uncompressed OTLP Export*ServiceRequest (empty when its points went to `visitor` instead). */
  otlp: Uint8Array;
  /** Decoding only: the visitor that was told the segment's points (see FrameDecoder.decode). */
  visitor?: MetricsVisitor;
}

/** Asked for each metrics segment carried as columns: a visitor to tell its points to instead of rebuilding it. */
export type VisitorFor = (segment: { seq: number; signal: Signal; points: number }) => MetricsVisitor | null;

const KIND_RAW = 0;
const KIND_METRICS = 1;
const RESET = 0x80;
const MAX_SEQ = 2 ** 52;
/** Segments a frame may hold: an agent sends at most a few thousand stored batches, or packed records of 8,192. */
export const MAX_SEGMENTS = 65_536;

function newColumns(): Columns {
  return {
    s: new ByteSink(16 * 1024),
    t: new ByteSink(16 * 1024),
    v: new ByteSink(16 * 1024),
    d: new ByteSink(16 * 1024),
  };
}

export class FrameEncoder {
  private readonly state = new StreamState();
  private readonly cols = newColumns();
  private readonly metrics = new MetricsColumnEncoder(this.state, this.cols);
  private readonly plan: Plan = { counts: [], n: 0, resources: 0, scopes: 0, metrics: 0, points: 0 };
  private readonly out = new ByteSink(64 * 1024);

  /** The frame body for `segments`; a view valid until the next call. */
  encode(segments: readonly Segment[]): Uint8Array {
    const { s, t, v, d } = this.cols;
    s.reset();
    t.reset();
    v.reset();
    d.reset();
    for (const seg of segments) {
      if (!Number.isSafeInteger(seg.seq) || seg.seq < 1 || seg.seq >= MAX_SEQ)
        throw new RangeError(`segment seq ${seg.seq} is outside 1…2^52`);
      const columns = seg.signal === Signal.METRICS && planMetrics(seg.otlp, this.plan);
      let flags = columns ? KIND_METRICS : KIND_RAW;
      if (columns && this.state.nearLimits(seg.otlp.length, this.plan)) {
        this.state.clear();
        flags |= RESET;
      }
      s.byte(flags);
      s.zigzag(seg.seq - this.state.lastSeq);
      this.state.lastSeq = seg.seq;
      s.byte(seg.signal);
      s.varint(seg.points);
      if (columns) this.metrics.encode(seg.otlp, this.plan);
      else {
        s.varint(seg.otlp.length);
        d.bytes(seg.otlp);
      }
    }
    const out = this.out;
    out.reset();
    out.varint(segments.length);
    for (const c of [s, t, v, d]) out.varint(c.pos);
    for (const c of [s, t, v, d]) out.bytes(c.view());
    return out.view();
  }
}

export class FrameDecoder {
  private readonly state = new StreamState();
  private readonly metrics = new MetricsColumnDecoder(this.state);

  /**
   * The segments of a frame body. Throws ProtoError when the body does not follow the encoder, or its segments
   * would inflate past `maxBytes` in all: the stream's state is then unusable and the stream must end. A metrics
   * segment carried as columns is told to the visitor `visitorFor` gives for it (if any) rather than rebuilt; the
   * visitor must not throw (the state moves on whatever it makes of the points). With `rebuild`, such a segment is
   * told to its visitor and rebuilt too, in one pass.
   */
  decode(body: Uint8Array, maxBytes: number, visitorFor?: VisitorFor, rebuild = false): Segment[] {
    const src = new ByteSource(body);
    const n = src.bounded(Math.min(src.left, MAX_SEGMENTS), 'segment count');
    const lengths = [0, 0, 0, 0].map(() => src.varint());
    if (lengths.reduce((a, b) => a + b, 0) !== src.left) corrupt('column lengths do not add up to the frame');
    let at = src.pos;
    const [s, t, v, d] = lengths.map((len) => new ByteSource(body, at, (at += len)));
    const cols = { s, t, v, d };
    const out: Segment[] = [];
    let total = 0;
    for (let i = 0; i < n; i++) {
      const flags = s.byte();
      if (flags & RESET) this.state.clear();
      const kind = flags & ~RESET;
      const seq = this.state.lastSeq + s.zigzag();
      if (seq < 1 || seq >= MAX_SEQ) corrupt(`segment seq ${seq}`);
      this.state.lastSeq = seq;
      const signal = s.byte();
      if (signal !== Signal.METRICS && signal !== Signal.LOGS) corrupt(`segment signal ${signal}`);
      const points = s.varint();
      let otlp: Uint8Array;
      let visitor: MetricsVisitor | null = null;
      if (kind === KIND_RAW) otlp = d.bytes(s.bounded(d.left, 'segment length')).slice();
      else if (kind === KIND_METRICS && signal === Signal.METRICS) {
        visitor = visitorFor?.({ seq, signal, points }) ?? null;
        otlp = this.metrics.decode(cols, maxBytes - total, visitor, rebuild);
        total += this.metrics.size - otlp.length;
      } else return corrupt(`segment kind ${kind} for signal ${signal}`);
      total += otlp.length;
      if (total > maxBytes) corrupt(`frame inflates past ${maxBytes} bytes`);
      out.push(visitor ? { seq, signal, points, otlp, visitor } : { seq, signal, points, otlp });
    }
    if (s.left || t.left || v.left || d.left) corrupt('bytes left over after the last segment');
    return out;
  }
}
