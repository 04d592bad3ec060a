import { ProtoReader } from './reader.js';
import { ProtoWriter, Wire } from './writer.js';

/**
 * The error details OTLP carries, hand-encoded: `google.rpc.Status { int32 code = 1; string message = 2; repeated
 * google.protobuf.Any details = 3 }`, with a `google.rpc.RetryInfo { Duration retry_delay = 1 }` detail when the
 * client should come back later. OTLP/HTTP puts a Status in the body of every 4xx/5xx answer; OTLP/gRPC puts it in
 * the `grpc-status-details-bin` trailer. And the Export*ServiceResponse's partial success.
 */

const RETRY_INFO_TYPE = 'type.googleapis.com/google.rpc.RetryInfo';

export function encodeRpcStatus(code: number, message: string, retryDelayMs?: number): Uint8Array {
  const w = new ProtoWriter(256 + message.length * 3);
  if (code !== 0) {
    w.tag(1, Wire.VARINT);
    w.varint(code);
  }
  if (message !== '') w.stringField(2, message);
  if (retryDelayMs !== undefined) {
    w.fork(3);
    w.stringField(1, RETRY_INFO_TYPE);
    w.fork(2); // Any.value: RetryInfo
    w.fork(1); // retry_delay: Duration
    const seconds = Math.floor(retryDelayMs / 1000);
    if (seconds > 0) {
      w.tag(1, Wire.VARINT);
      w.varint(seconds);
    }
    const nanos = Math.round((retryDelayMs - seconds * 1000) * 1e6);
    if (nanos > 0) {
      w.tag(2, Wire.VARINT);
      w.varint(nanos);
    }
    w.join();
    w.join();
    w.join();
  }
  return w.finish();
}

/** The RetryInfo delay of a google.rpc.Status, in ms; null when it has none (or the bytes are not a Status). */
export function retryDelayOf(status: Uint8Array): number | null {
  try {
    const r = new ProtoReader(status);
    let delay: number | null = null;
    r.fields(r.end, (f, w) => {
      if (f !== 3 || w !== 2) return r.skip(w);
      let type = '';
      let value: Uint8Array | null = null;
      r.fields(r.submessageEnd(), (af, aw) => {
        if (af === 1 && aw === 2) type = r.string();
        else if (af === 2 && aw === 2) value = r.bytes();
        else r.skip(aw);
      });
      if (type !== RETRY_INFO_TYPE || value === null) return;
      const v = new ProtoReader(value);
      v.fields(v.end, (rf, rw) => {
        if (rf !== 1 || rw !== 2) return v.skip(rw);
        let seconds = 0;
        let nanos = 0;
        v.fields(v.submessageEnd(), (df, dw) => {
          if (df === 1 && dw === 0) seconds = v.varint();
          else if (df === 2 && dw === 0) nanos = v.varint();
          else v.skip(dw);
        });
        delay = seconds * 1000 + nanos / 1e6;
      });
    });
    return delay;
  } catch {
    return null;
  }
}

/** The message of a google.rpc.Status ('' when it has none or is not one). */
export function rpcStatusMessage(status: Uint8Array): string {
  try {
    const r = new ProtoReader(status);
    let message = '';
    r.fields(r.end, (f, w) => {
      if (f === 2 && w === 2) message = r.string();
      else r.skip(w);
    });
    return message;
  } catch {
    return '';
  }
}

/** Export*ServiceResponse { partial_success = 1 { int64 rejected = 1; string error_message = 2 } }. */
export function encodePartialSuccess(rejected: number, message: string): Uint8Array {
  if (rejected === 0 && message === '') return new Uint8Array(0);
  const w = new ProtoWriter(64 + message.length * 3);
  w.fork(1);
  if (rejected !== 0) {
    w.tag(1, Wire.VARINT);
    w.int64(rejected);
  }
  if (message !== '') w.stringField(2, message);
  w.join();
  return w.finish();
}

export function decodePartialSuccess(bytes: Uint8Array): { rejected: number; message: string } {
  const out = { rejected: 0, message: '' };
  try {
    const r = new ProtoReader(bytes);
    r.fields(r.end, (f, w) => {
      if (f !== 1 || w !== 2) return r.skip(w);
      r.fields(r.submessageEnd(), (pf, pw) => {
        if (pf === 1 && pw === 0) out.rejected = Number(BigInt.asIntN(64, r.varintBig()));
        else if (pf === 2 && pw === 2) out.message = r.string();
        else r.skip(pw);
      });
    });
  } catch {
    // a response body we cannot read says nothing about rejections
  }
  return out;
}
