import { rewriteAttributes, rewriteResource, type AttributeHooks } from '../../protocol/otlp/attribute-rewrite.js';
import { Signal } from '../../protocol/otlp/signal.js';
import type { DeviceData } from '../device/types.js';

/**
 * The aggregator's `attributes` and `redaction` processors on what it takes in, before anything is stored, stamped
 * with its tenant, streamed or exported: over OTLP requests in their bytes (protocol/otlp/attribute-rewrite.ts),
 * and, for data read from an uplink stream's columns (no request), over each device's Resource — remembered beside
 * the stream's own Resource object, so a stream of 1,000 devices is processed 1,000 times, not once per batch.
 */
export class IngestAttributes {
  private readonly resources = new WeakMap<Uint8Array, Uint8Array>();

  constructor(private readonly hooks: AttributeHooks) {}

  /** An inflated OTLP request after the processors (traces pass as they are). Throws ProtoError. */
  request(signal: Signal, raw: Uint8Array): Uint8Array {
    return signal === Signal.TRACES ? raw : rewriteAttributes(signal, raw, this.hooks);
  }

  /** Device data read from columns: each Resource after the processors. */
  data(data: DeviceData[]): void {
    const hook = this.hooks.resource;
    if (hook === undefined) return;
    for (const d of data) {
      const r = d.resource;
      if (!r) continue;
      let out = this.resources.get(r);
      if (out === undefined) this.resources.set(r, (out = rewriteResource(r, (a) => hook(d.deviceId, a))));
      d.resource = out;
    }
  }
}
