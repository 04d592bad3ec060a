import type { AnyValue } from '../payload/types.js';
import { anyValue, keyValue } from './decode.js';
import { writeAnyValue, writeKeyValue } from './any-value.js';
import { plainValue } from './plain.js';
import { ProtoReader } from './reader.js';
import { Signal } from './signal.js';
import { ATTR_DEVICE_ID } from './semconv.js';
import { ProtoWriter } from './writer.js';

/**
 * The attributes (and log bodies) of an OTLP metrics or logs request changed in the bytes by processors, without
 * decoding what they leave alone: a Resource, data point or log record is decoded (its attributes as
 * `[key, value…]`) and written again only when a hook returns something new; everything else is copied byte for
 * byte. Values of a list a hook changed are written back from their plain form (integers within 2^53 as int_value,
 * other numbers as double, bytes as their base64 text).
 */

/** Attributes as processors take them: `[key, value, key, value…]`. */
export type Attributes = AnyValue[];

export interface AttributeHooks {
  /** A Resource's attributes → the same list (unchanged) or a new one. */
  resource?(deviceId: string, attrs: Attributes): Attributes;
  /** A data point's attributes, of metric `metric`. */
  point?(deviceId: string, metric: string, attrs: Attributes): Attributes;
  /** A log record's attributes and body (undefined: none) → the same object (unchanged) or a new one. */
  log?(deviceId: string, rec: LogFields): LogFields;
}

export interface LogFields {
  attrs: Attributes;
  body: AnyValue | undefined;
}

/** Attributes field of each data point type, by the Metric field holding it (gauge, sum, histogram, exp, summary). */
const POINT_ATTRIBUTES: Record<number, number> = { 5: 7, 7: 7, 9: 9, 10: 1, 11: 7 };

/** The request with the hooks applied; the same bytes when no hook changed anything. Throws ProtoError. */
export function rewriteAttributes(signal: Signal, request: Uint8Array, hooks: AttributeHooks): Uint8Array {
  const rw = new Rewrite(request, hooks, signal);
  rw.request();
  return rw.changed ? rw.w.finish() : request;
}

class Rewrite {
  readonly w: ProtoWriter;
  readonly r: ProtoReader;
  changed = false;

  constructor(
    private readonly src: Uint8Array,
    private readonly hooks: AttributeHooks,
    private readonly signal: Signal,
  ) {
    this.r = new ProtoReader(src);
    this.w = new ProtoWriter(src.length + 256);
  }

  /** Copies the field just read (its tag was read before `at`). */
  private copy(f: number, wire: number, at: number): void {
    this.r.skip(wire);
    this.w.tag(f, wire);
    this.w.raw(this.src.subarray(at, this.r.pos));
  }

  request(): void {
    const r = this.r;
    r.fields(r.end, (f, wire) => {
      const at = r.pos;
      if (f !== 1 || wire !== 2) return this.copy(f, wire, at);
      const end = r.submessageEnd();
      const deviceId = this.deviceIdOf(r.pos, end);
      this.w.fork(1);
      r.fields(end, (rf, rw) => {
        const rat = r.pos;
        if (rf === 1 && rw === 2) return this.resource(deviceId, r.submessageEnd());
        if (rf === 2 && rw === 2) return this.scope(deviceId, r.submessageEnd());
        this.copy(rf, rw, rat);
      });
      this.w.join();
    });
  }

  /** `device.id` of the ResourceX in [start, end) ('' for none), read ahead of its scopes. */
  private deviceIdOf(start: number, end: number): string {
    const r = new ProtoReader(this.src, start, end);
    let id = '';
    r.fields(end, (f, w) => {
      if (f !== 1 || w !== 2) return r.skip(w);
      const resEnd = r.submessageEnd();
      r.fields(resEnd, (af, aw) => {
        if (af !== 1 || aw !== 2) return r.skip(aw);
        const kv = keyValue(r, r.submessageEnd());
        if (kv.key === ATTR_DEVICE_ID && kv.value.stringValue !== undefined) id = kv.value.stringValue;
      });
    });
    return id;
  }

  private resource(deviceId: string, end: number): void {
    const hook = this.hooks.resource;
    this.rewriteAttributes(1, 1, end, hook ? (a) => hook(deviceId, a) : null);
  }

  /**
   * A message under `field` whose attributes are its field `attrField`: copied as it is, or — when `apply` gives a
   * new list — written with its other fields as they were and the new attributes after them.
   */
  private rewriteAttributes(
    field: number,
    attrField: number,
    end: number,
    apply: ((a: Attributes) => Attributes) | null,
  ): void {
    const start = this.r.pos;
    this.r.pos = end;
    if (apply === null) return this.raw(field, start, end);
    const attrs = readAttributes(this.src, start, end, attrField);
    const next = apply(attrs);
    if (next === attrs) return this.raw(field, start, end);
    this.changed = true;
    this.w.fork(field);
    copyExcept(this.src, start, end, [attrField], this.w);
    writeAttributes(this.w, attrField, next);
    this.w.join();
  }

  private raw(field: number, start: number, end: number): void {
    this.w.fork(field);
    this.w.raw(this.src.subarray(start, end));
    this.w.join();
  }

  private scope(deviceId: string, end: number): void {
    const r = this.r;
    this.w.fork(2);
    r.fields(end, (f, wire) => {
      const at = r.pos;
      if (f !== 2 || wire !== 2) return this.copy(f, wire, at);
      const itemEnd = r.submessageEnd();
      if (this.signal === Signal.LOGS) this.logRecord(deviceId, itemEnd);
      else this.metric(deviceId, itemEnd);
    });
    this.w.join();
  }

  private metric(deviceId: string, end: number): void {
    const hook = this.hooks.point;
    const r = this.r;
    if (!hook) {
      const start = r.pos;
      r.pos = end;
      return this.raw(2, start, end);
    }
    const name = metricName(this.src, r.pos, end);
    this.w.fork(2);
    r.fields(end, (f, wire) => {
      const at = r.pos;
      const attrField = POINT_ATTRIBUTES[f];
      if (attrField === undefined || wire !== 2) return this.copy(f, wire, at);
      const dataEnd = r.submessageEnd();
      this.w.fork(f);
      r.fields(dataEnd, (df, dw) => {
        const dat = r.pos;
        if (df !== 1 || dw !== 2) return this.copy(df, dw, dat);
        this.rewriteAttributes(1, attrField, r.submessageEnd(), (a) => hook(deviceId, name, a));
      });
      this.w.join();
    });
    this.w.join();
  }

  private logRecord(deviceId: string, end: number): void {
    const hook = this.hooks.log;
    const start = this.r.pos;
    this.r.pos = end;
    if (!hook) return this.raw(2, start, end);
    const rec: LogFields = { attrs: readAttributes(this.src, start, end, 6), body: readBody(this.src, start, end) };
    const next = hook(deviceId, rec);
    if (next === rec) return this.raw(2, start, end);
    this.changed = true;
    this.w.fork(2);
    copyExcept(this.src, start, end, [5, 6], this.w);
    if (next.body !== undefined) writeAnyValue(this.w, 5, next.body);
    writeAttributes(this.w, 6, next.attrs);
    this.w.join();
  }
}

/** A Resource message with `hook` applied to its attributes; the same bytes when it changed nothing. */
export function rewriteResource(resource: Uint8Array, apply: (attrs: Attributes) => Attributes): Uint8Array {
  const attrs = readAttributes(resource, 0, resource.length, 1);
  const next = apply(attrs);
  if (next === attrs) return resource;
  const w = new ProtoWriter(resource.length + 64);
  copyExcept(resource, 0, resource.length, [1], w);
  writeAttributes(w, 1, next);
  return w.finish();
}

function readAttributes(src: Uint8Array, start: number, end: number, field: number): Attributes {
  const r = new ProtoReader(src, start, end);
  const out: Attributes = [];
  r.fields(end, (f, w) => {
    if (f !== field || w !== 2) return r.skip(w);
    const kv = keyValue(r, r.submessageEnd());
    out.push(kv.key, plainValue(kv.value));
  });
  return out;
}

function readBody(src: Uint8Array, start: number, end: number): AnyValue | undefined {
  const r = new ProtoReader(src, start, end);
  let body: AnyValue | undefined;
  r.fields(end, (f, w) => {
    if (f === 5 && w === 2) body = plainValue(anyValue(r, r.submessageEnd()));
    else r.skip(w);
  });
  return body;
}

function metricName(src: Uint8Array, start: number, end: number): string {
  const r = new ProtoReader(src, start, end);
  let name = '';
  r.fields(end, (f, w) => {
    if (f === 1 && w === 2) name = r.string();
    else r.skip(w);
  });
  return name;
}

/** Copies every field of [start, end) but `skip` ones, tags included. */
function copyExcept(src: Uint8Array, start: number, end: number, skip: number[], w: ProtoWriter): void {
  const r = new ProtoReader(src, start, end);
  r.fields(end, (f, wire) => {
    const at = r.pos;
    r.skip(wire);
    if (skip.includes(f)) return;
    w.tag(f, wire);
    w.raw(src.subarray(at, r.pos));
  });
}

function writeAttributes(w: ProtoWriter, field: number, attrs: Attributes): void {
  for (let i = 0; i + 1 < attrs.length; i += 2) writeKeyValue(w, field, String(attrs[i]), attrs[i + 1]);
}
