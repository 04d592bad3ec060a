/**
 * The names the OTLP mapping gives things (as opentelemetry-js keeps its semantic conventions together): the
 * Resource attributes of a device, the gauge that carries `seq` end to end, and the defaults an agent fills in.
 * Agents write them, the aggregator reads them, and backends see them: changing one is a wire change.
 */

/** Resource attribute naming the device (OpenTelemetry semantic conventions). */
export const ATTR_DEVICE_ID = 'device.id';
export const ATTR_SERVICE_NAME = 'service.name';
/** Resource attribute naming the gateway (agent) a device's data came through. */
export const ATTR_GATEWAY_ID = 'otlp_edge.gateway.id';
/** The gauge that carries each reading's `seq` end to end (loss and duplicate accounting). */
export const SEQ_METRIC = 'otlp_edge.device.seq';
/** `service.name` of a device Resource unless configured (agent.service_name). */
export const DEFAULT_SERVICE_NAME = 'iot-device';
/** Instrumentation scope of everything the agent encodes. */
export const DEFAULT_SCOPE_NAME = 'otlp-edge-agent';
/**
 * Resource attribute naming the tenant a device's data belongs to. The aggregator sets it from the sender's token
 * (and removes what a sender wrote there): it is never taken from the data.
 */
export const ATTR_TENANT_ID = 'tenant.id';
