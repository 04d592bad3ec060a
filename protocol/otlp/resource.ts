import { ProtoWriter } from './writer.js';
import type { ResolvedEncoderOptions } from './options.js';
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

  constructor(o: ResolvedEncoderOptions) {
    const w = new ProtoWriter(1024);
    writeStringKeyValue(w, 1, ATTR_SERVICE_NAME, o.serviceName);
    writeStringKeyValue(w, 1, ATTR_GATEWAY_ID, o.gatewayId);
    for (const [k, v] of Object.entries(o.attributes)) writeStringKeyValue(w, 1, k, v);
    this.tail = w.finish();

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
    w.raw(this.tail);
    w.join();
  }
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
