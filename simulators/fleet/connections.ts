import { connect as mqttConnect, type IClientOptions } from 'mqtt';
import type { DeviceClient } from './device.js';
import { LeanMqttClient } from './lean-client.js';
import type { ResolvedFleetOptions } from './options.js';
import { mulberry32 } from './signals.js';

/** How a fleet's device `deviceId` (the `index`-th) connects: MQTT.js or the lean client, with the fleet's options. */
export function clientFactory(o: ResolvedFleetOptions, deviceId: string, index: number): () => DeviceClient {
  const c = clientOptions(o, deviceId, index);
  if (o.client === 'lean') {
    const url = new URL(o.url);
    return () =>
      new LeanMqttClient(url, {
        clientId: c.clientId!,
        username: c.username,
        password: c.password === undefined ? undefined : String(c.password),
        keepalive: c.keepalive!,
        connectTimeout: c.connectTimeout!,
        reconnectPeriod: c.reconnectPeriod!,
      });
  }
  return () => mqttConnect(o.url, c);
}

const noop = (): void => undefined;

function clientOptions(o: ResolvedFleetOptions, deviceId: string, index: number): IClientOptions {
  const jitter = 0.5 + mulberry32(o.seed + index)();
  return {
    clientId: deviceId,
    username: deviceId,
    password: typeof o.password === 'function' ? o.password(deviceId) : o.password,
    protocolVersion: o.protocolVersion,
    clean: true,
    connectTimeout: o.connectTimeout,
    reconnectPeriod: Math.round(o.reconnectPeriod * jitter),
    keepalive: o.keepalive,
    // By default every PUBACK re-arms the keep-alive timer; a PINGREQ per keepalive period is cheaper.
    reschedulePings: false,
    // The device decides what to do while disconnected (owe the message); MQTT.js should not queue QoS 0 for it.
    queueQoSZero: false,
    // MQTT.js logs ~15 times per publish through `debug`; even disabled that was 6% of the fleet's CPU.
    // DEBUG=mqttjs* still turns its logs on.
    ...(process.env.DEBUG ? {} : { log: noop }),
    ...(o.ca !== undefined ? { ca: o.ca } : {}),
    rejectUnauthorized: o.rejectUnauthorized,
  };
}
