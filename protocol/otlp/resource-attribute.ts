import { ProtoReader } from './reader.js';
import { ProtoWriter } from './writer.js';
import { writeStringKeyValue } from './resource.js';

/**
 * One string attribute of the Resources of an OTLP request set (or removed) in the bytes, without decoding what
 * else they hold: how the aggregator stamps `tenant.id` on what a tenant's token sent, whatever the sender wrote
 * there. Metrics, logs and traces requests share the shape: field 1 is a repeated ResourceX whose field 1 is the
 * Resource, whose field 1 is the repeated KeyValue attributes. Everything else is copied byte for byte.
 */

const utf8 = new TextEncoder();
/** Keys' UTF-8, encoded once (a few constant keys). */
const encoded = new Map<string, Uint8Array>();

/** Whether `bytes` hold the UTF-8 of `key` anywhere (a request that does not cannot carry the attribute). */
export function mentions(bytes: Uint8Array, key: string): boolean {
  let k = encoded.get(key);
  if (k === undefined) {
    if (encoded.size > 64) encoded.clear();
    encoded.set(key, (k = utf8.encode(key)));
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(k) >= 0;
}

/** The string value of attribute `key` in a Resource message, or null when it has none (or not a string). */
export function resourceStringAttribute(resource: Uint8Array, key: string): string | null {
  if (!mentions(resource, key)) return null;
  const r = new ProtoReader(resource);
  let found: string | null = null;
  r.fields(r.end, (f, w) => {
    if (f !== 1 || w !== 2) return r.skip(w);
    const kv = keyValue(r, r.submessageEnd());
    if (kv.key === key) found = kv.value;
  });
  return found;
}

/**
 * The Resource `resource` with every attribute named `key` removed and, when `value` is not null, `key` = `value`
 * appended. The same bytes when nothing changes.
 */
export function withResourceAttribute(resource: Uint8Array, key: string, value: string | null): Uint8Array {
  if (value === null && !mentions(resource, key)) return resource;
  if (value !== null && resourceStringAttribute(resource, key) === value && countOf(resource, key) === 1)
    return resource;
  const w = new ProtoWriter(resource.length + key.length + (value?.length ?? 0) + 16);
  writeResourceBody(w, new ProtoReader(resource), resource.length, key, value);
  return w.finish();
}

/**
 * An Export{Metrics,Logs,Trace}ServiceRequest with attribute `key` of every Resource set to `value` (removed when
 * null); a ResourceX without a Resource gains one when `value` is set. The same bytes when nothing changes.
 * Throws ProtoError for bytes that cannot be read.
 */
export function withRequestResourceAttribute(request: Uint8Array, key: string, value: string | null): Uint8Array {
  if (value === null && !mentions(request, key)) return request;
  const r = new ProtoReader(request);
  const w = new ProtoWriter(request.length + 64);
  while (r.pos < r.end) {
    const start = r.pos;
    const tag = r.varint();
    if (tag !== 0x0a) {
      r.skip(tag & 7);
      w.raw(request.subarray(start, r.pos));
      continue;
    }
    const end = r.submessageEnd();
    w.fork(1);
    let hadResource = false;
    r.fields(end, (f, wire) => {
      const at = r.pos;
      if (f === 1 && wire === 2) {
        const resEnd = r.submessageEnd();
        hadResource = true;
        w.fork(1);
        writeResourceBody(w, r, resEnd, key, value);
        w.join();
        return;
      }
      r.skip(wire);
      // Copied with its tag: the tag was read before `at`, so rewrite it.
      w.tag(f, wire);
      w.raw(request.subarray(at, r.pos));
    });
    if (!hadResource && value !== null) {
      w.fork(1);
      writeStringKeyValue(w, 1, key, value);
      w.join();
    }
    w.join();
  }
  return w.finish();
}

/** Copies a Resource's fields up to `end` without attributes named `key`, then appends `key` = `value`. */
function writeResourceBody(w: ProtoWriter, r: ProtoReader, end: number, key: string, value: string | null): void {
  const src = r.buf;
  r.fields(end, (f, wire) => {
    const at = r.pos;
    if (f === 1 && wire === 2) {
      const kvEnd = r.submessageEnd();
      const bodyAt = r.pos;
      const kv = keyValue(r, kvEnd);
      if (kv.key === key) return;
      w.fork(1);
      w.raw(src.subarray(bodyAt, kvEnd));
      w.join();
      return;
    }
    r.skip(wire);
    w.tag(f, wire);
    w.raw(src.subarray(at, r.pos));
  });
  if (value !== null) writeStringKeyValue(w, 1, key, value);
}

/** A KeyValue's key and its string value ('' for another type); leaves the reader at `end`. */
function keyValue(r: ProtoReader, end: number): { key: string; value: string | null } {
  let key = '';
  let value: string | null = null;
  r.fields(end, (kf, kw) => {
    if (kf === 1 && kw === 2) key = r.string();
    else if (kf === 2 && kw === 2) {
      r.fields(r.submessageEnd(), (af, aw) => {
        if (af === 1 && aw === 2) value = r.string();
        else r.skip(aw);
      });
    } else r.skip(kw);
  });
  return { key, value };
}

function countOf(resource: Uint8Array, key: string): number {
  const r = new ProtoReader(resource);
  let n = 0;
  r.fields(r.end, (f, w) => {
    if (f !== 1 || w !== 2) return r.skip(w);
    if (keyValue(r, r.submessageEnd()).key === key) n++;
  });
  return n;
}
