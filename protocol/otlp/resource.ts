import { ProtoWriter } from './writer.js';
import type { ResolvedEncoderOptions, ResourceOf } from './options.js';
import { ATTR_DEVICE_ID, ATTR_GATEWAY_ID, ATTR_SERVICE_NAME } from './semconv.js';

/**
 * The parts of a device's Resource and Scope that are the same for every device of a gateway, encoded once when the
 * encoder is built and copied into each batch as bytes.
 */
export class ResourceTemplate {
  /** KeyValue entries (field 1 of Resource) after `device.id`: service.name, gateway id, configured attributes. */
  private readonly tail: Uint8Array;
  /** A complete `scope` field (field 1 of ScopeMetrics/ScopeLogs). */
  readonly scopeField: Uint8Array;
  /** The gateway's attributes as `[key, value…]`, for `resourceOf`. */
  private readonly base: readonly string[];
  private readonly resourceOf: ResourceOf | null;
  /** Each device's tail when processors make it per device; started over past TAILS_KEPT devices. */
  private readonly tails = new Map<string, Uint8Array>();

  constructor(o: ResolvedEncoderOptions) {
    const w = new ProtoWriter(1024);
    this.base = [
      ATTR_SERVICE_NAME,
      o.serviceName,
      ATTR_GATEWAY_ID,
      o.gatewayId,
      ...Object.entries(o.attributes).flat(),
    ];
    this.resourceOf = o.resource;
    this.tail = encodeTail(w, this.base);

    w.reset();
    w.fork(1);
    w.stringField(1, o.scopeName);
    w.stringField(2, o.scopeVersion);
    w.join();
    this.scopeField = w.finish();
  }

  /** Writes `resource` (field 1 of ResourceMetrics/ResourceLogs) for one device. */
  writeResource(w: ProtoWriter, deviceId: string): void {
    w.fork(1);
    writeStringKeyValue(w, 1, ATTR_DEVICE_ID, deviceId);
    w.raw(this.resourceOf === null ? this.tail : this.tailOf(deviceId));
    w.join();
  }

  private tailOf(deviceId: string): Uint8Array {
    let tail = this.tails.get(deviceId);
    if (tail === undefined) {
      if (this.tails.size >= TAILS_KEPT) this.tails.clear();
      tail = encodeTail(new ProtoWriter(256), this.resourceOf!(deviceId, this.base));
      this.tails.set(deviceId, tail);
    }
    return tail;
  }
}

/** Devices whose Resource bytes are kept (~100 B each) when processors make Resources per device. */
const TAILS_KEPT = 20_000;

function encodeTail(w: ProtoWriter, attrs: readonly unknown[]): Uint8Array {
  for (let i = 0; i < attrs.length; i += 2) writeStringKeyValue(w, 1, String(attrs[i]), String(attrs[i + 1]));
  return w.finish();
}

/** KeyValue { key = 1; value = 2 (AnyValue { string_value = 1 }) } under `field`. */
export function writeStringKeyValue(w: ProtoWriter, field: number, key: string, value: string): void {
  w.fork(field);
  w.stringField(1, key);
  w.fork(2);
  w.stringField(1, value);
  w.join();
  w.join();
}
