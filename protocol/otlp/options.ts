import { VERSION } from '../version.js';
import { DEFAULT_SCOPE_NAME, DEFAULT_SERVICE_NAME } from './semconv.js';

/** How the agent describes each device as an OTLP Resource (agent/README.md "OTLP mapping"). */
export interface EncoderOptions {
  /** `service.name` of every device Resource; default 'iot-device'. */
  serviceName?: string;
  /** `otlp_edge.gateway.id`: the agent's id. */
  gatewayId: string;
  /** Further Resource attributes of every device from this gateway, e.g. `{ site: 'plant-7' }`; default none. */
  attributes?: Record<string, string>;
  /** Instrumentation scope name; default 'otlp-edge-agent'. */
  scopeName?: string;
  /** Instrumentation scope version; default the package version. */
  scopeVersion?: string;
  /** Metric names encoded as a monotonic cumulative Sum instead of a Gauge; default none. */
  counters?: string[];
  /**
   * A device's Resource attributes (after `device.id`) from the gateway's `[key, value…]` list, when processors
   * change them per device; default: the gateway's list for every device.
   */
  resource?: ResourceOf;
}

/** Resource attributes of one device from the gateway's `base` list (`[key, value…]`, without device.id). */
export type ResourceOf = (deviceId: string, base: readonly string[]) => readonly unknown[];

export interface ResolvedEncoderOptions {
  serviceName: string;
  gatewayId: string;
  attributes: Record<string, string>;
  scopeName: string;
  scopeVersion: string;
  counters: ReadonlySet<string>;
  resource: ResourceOf | null;
}

export function resolveEncoderOptions(o: EncoderOptions): ResolvedEncoderOptions {
  return {
    serviceName: o.serviceName ?? DEFAULT_SERVICE_NAME,
    gatewayId: o.gatewayId,
    attributes: { ...(o.attributes ?? {}) },
    scopeName: o.scopeName ?? DEFAULT_SCOPE_NAME,
    scopeVersion: o.scopeVersion ?? VERSION,
    counters: new Set(o.counters ?? []),
    resource: o.resource ?? null,
  };
}
