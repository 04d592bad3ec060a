import type { AnyValue } from '../payload/types.js';
import { ProtoWriter, Wire } from './writer.js';

/**
 * AnyValue { string_value = 1, bool_value = 2, int_value = 3 (int64), double_value = 4, array_value = 5,
 * kvlist_value = 6 } under `field`. Integers within 2^53 become int_value, other numbers double_value; null is an
 * empty AnyValue (the spec's "empty value").
 */
export function writeAnyValue(w: ProtoWriter, field: number, v: AnyValue): void {
  w.fork(field);
  writeAnyValueBody(w, v);
  w.join();
}

function writeAnyValueBody(w: ProtoWriter, v: AnyValue): void {
  switch (typeof v) {
    case 'string':
      w.stringField(1, v);
      return;
    case 'boolean':
      w.tag(2, Wire.VARINT);
      w.bool(v);
      return;
    case 'number':
      if (Number.isSafeInteger(v)) {
        w.tag(3, Wire.VARINT);
        w.int64(v);
      } else {
        w.tag(4, Wire.FIXED64);
        w.double(v);
      }
      return;
  }
  if (v === null) return;
  if (Array.isArray(v)) {
    w.fork(5); // ArrayValue { values = 1 }
    for (const item of v) writeAnyValue(w, 1, item);
    w.join();
    return;
  }
  w.fork(6); // KeyValueList { values = 1 (KeyValue) }
  for (const key of Object.keys(v)) writeKeyValue(w, 1, key, v[key]);
  w.join();
}

/** KeyValue { key = 1, value = 2 } under `field`. */
export function writeKeyValue(w: ProtoWriter, field: number, key: string, value: AnyValue): void {
  w.fork(field);
  w.stringField(1, key);
  writeAnyValue(w, 2, value);
  w.join();
}
