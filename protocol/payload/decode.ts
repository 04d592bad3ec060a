import { isUtf8 } from 'node:buffer';
import { Decoder } from 'cbor-x';
import { PayloadError, PayloadErrorCodes as C } from '../errors.js';
import { checkCbor } from './cbor-check.js';
import { toEvents } from './events.js';
import { toReadings } from './readings.js';
import { DEFAULT_LIMITS, type DecodeOptions, type DeviceEvent, type PayloadEncoding, type PayloadLimits, type Reading } from './types.js';

/**
 * Device payloads → normalized readings and events. The entry points throw only PayloadError, whose code says what
 * kind of problem it was and whose message says where and what was expected — written for the firmware engineer
 * who reads it on the device's errors topic.
 */

// Plain objects (never Maps or records) and no cbor-x extensions: devices send RFC 8949 data.
const cbor = new Decoder({ mapsAsObjects: true, useRecords: false, structures: undefined } as ConstructorParameters<typeof Decoder>[0]);

/** MQTT 5 content-type wins; otherwise JSON when the first non-blank byte is `{` or `[`, else CBOR. */
export function detectEncoding(payload: Uint8Array, contentType?: string): PayloadEncoding {
  if (contentType !== undefined && contentType !== '') {
    const type = contentType.split(';')[0].trim().toLowerCase();
    if (type === 'application/json') return 'json';
    if (type === 'application/cbor') return 'cbor';
    throw new PayloadError(C.BAD_CONTENT_TYPE, `content-type ${JSON.stringify(contentType)} is not decoded here; send application/json or application/cbor (or no content-type)`);
  }
  for (let i = 0; i < payload.length; i++) {
    const b = payload[i];
    if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d) continue;
    if (b === 0xef && payload[i + 1] === 0xbb && payload[i + 2] === 0xbf) { // UTF-8 byte order mark
      i += 2;
      continue;
    }
    return b === 0x7b || b === 0x5b ? 'json' : 'cbor';
  }
  return 'json';
}

function parse(payload: Uint8Array, opts: DecodeOptions, limits: PayloadLimits): unknown {
  if (payload.length > limits.maxBytes) throw new PayloadError(C.TOO_LARGE, `payload is ${payload.length} bytes; the limit is ${limits.maxBytes}`);
  if (payload.length === 0) throw new PayloadError(C.EMPTY, 'payload is empty; expected a JSON or CBOR reading');
  if (detectEncoding(payload, opts.contentType) === 'json') {
    if (!isUtf8(payload)) throw new PayloadError(C.BAD_UTF8, 'JSON payload is not valid UTF-8');
    let text = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.trim() === '') throw new PayloadError(C.EMPTY, 'payload is blank; expected a JSON or CBOR reading');
    try {
      return JSON.parse(text);
    } catch (e) {
      if (e instanceof RangeError) throw new PayloadError(C.TOO_DEEP, `JSON nests too deeply; the limit is ${limits.maxDepth} levels`);
      throw new PayloadError(C.BAD_JSON, `payload is not valid JSON: ${(e as Error).message}`);
    }
  }
  checkCbor(payload, limits.maxDepth + 1);
  try {
    return cbor.decode(payload);
  } catch (e) {
    throw new PayloadError(C.BAD_CBOR, `payload is not valid CBOR: ${(e as Error).message}`);
  }
}

/** Guards against anything but a PayloadError leaving (a RangeError from deep recursion, a bug). */
function guarded<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof PayloadError) throw e;
    if (e instanceof RangeError) throw new PayloadError(C.TOO_DEEP, `payload nests too deeply: ${e.message}`);
    throw new PayloadError(C.BAD_SHAPE, `payload could not be read: ${(e as Error).message}`);
  }
}

export function decodeTelemetry(payload: Uint8Array, opts: DecodeOptions): Reading[] {
  const limits = opts.limits ?? DEFAULT_LIMITS;
  return guarded(() => toReadings(parse(payload, opts, limits), opts.arrivalMs, limits));
}

export function decodeEvents(payload: Uint8Array, opts: DecodeOptions): DeviceEvent[] {
  const limits = opts.limits ?? DEFAULT_LIMITS;
  return guarded(() => toEvents(parse(payload, opts, limits), opts.arrivalMs, limits));
}
