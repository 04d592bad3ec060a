/**
 * Hand-built OTLP protobuf for hostile-input tests: requests no well-behaved encoder would make (millions of tiny
 * records, bodies nested thousands deep), written field by field so nothing of ours shapes them.
 */

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Buffer.from(out);
}

/** A length-delimited field. */
export function field(no: number, body: Uint8Array): Buffer {
  return Buffer.concat([varint((no << 3) | 2), varint(body.length), body]);
}

const text = (s: string) => Buffer.from(s, 'utf8');

/** A Resource with `device.id` = id. */
function resource(id: string): Buffer {
  return field(1, Buffer.concat([field(1, text('device.id')), field(2, field(1, text(id)))]));
}

/** ExportLogsServiceRequest: one device, `records` log records whose body is the string "x" (7 bytes each). */
export function tinyLogsRequest(deviceId: string, records: number): Buffer {
  // ScopeLogs.log_records { body { string_value "x" } }
  const one = field(2, Buffer.from([0x2a, 0x03, 0x0a, 0x01, 0x78]));
  const scope = Buffer.alloc(one.length * records);
  for (let i = 0; i < records; i++) one.copy(scope, i * one.length);
  return field(1, Buffer.concat([field(1, resource(deviceId)), field(2, scope)]));
}

/** ExportLogsServiceRequest: one device, one record whose body nests `depth` array values. */
export function deepLogsRequest(deviceId: string, depth: number): Buffer {
  let v: Buffer = field(1, text('bottom')); // AnyValue { string_value }
  for (let i = 0; i < depth; i++) v = field(5, field(1, v)); // AnyValue { array_value { values: v } }
  const record = field(5, v); // LogRecord.body
  return field(1, Buffer.concat([field(1, resource(deviceId)), field(2, field(2, record))]));
}
