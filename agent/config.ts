import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  bool,
  duration,
  id,
  int,
  list,
  map,
  obj,
  oneOf,
  size,
  str,
  variants,
  type ConfigProblem,
  type Infer,
} from '../protocol/config/schema.js';
import { loadConfig } from '../protocol/config/parse.js';
import { idFromHostName } from '../protocol/ids.js';
import { attributesSpec, memoryLimiterSpec, redactionSpec } from '../runtime/processors/spec.js';
import { checkProcessors } from '../runtime/processors/chain.js';
import { DEFAULT_TOPICS } from '../protocol/topics.js';

/**
 * The agent's configuration (`otlp-edge-agent --config agent.yaml`). Key names are a public contract (every key is
 * listed in deploy/agent.yaml, generated from this schema): add keys freely, rename none. Every key has a default;
 * sizes take `256MiB`, durations `200ms`; strings take `${env:NAME}` (or `${env:NAME:-default}`).
 */

const port = (d: number, doc: string) => int(d, 0, 65535, doc);

export const agentConfigSpec = obj({
  agent: obj({
    id: id('gateway id; default: the host name'),
    data_dir: str('./data/agent', { doc: 'LevelDB buffer and state' }),
    attributes: map('added to every device Resource, e.g. { site: plant-7 }'),
    service_name: str('iot-device', { doc: 'service.name of every device Resource' }),
    counters: list([], { doc: 'metric names sent as monotonic cumulative Sums instead of Gauges' }),
  }),
  mqtt: obj({
    broker: obj({
      enabled: bool(true, 'run the embedded broker (aedes)'),
      tcp: obj({
        host: str('0.0.0.0', { doc: 'address the MQTT listeners bind (TCP, TLS and WebSocket)' }),
        port: port(1883, 'MQTT over TCP; 0 = off'),
      }),
      tls: obj({
        port: port(0, 'MQTT over TLS; 0 = off'),
        cert: str('', { doc: 'PEM server certificate file' }),
        key: str('', { doc: 'PEM private key file' }),
        ca: str('', { doc: 'PEM CA bundle that signs device client certificates' }),
        require_client_cert: bool(false, 'refuse TLS devices without a client certificate signed by ca'),
      }),
      ws: obj({ port: port(0, 'MQTT over WebSocket; 0 = off') }),
      allow_anonymous: bool(false, 'development only: accept devices without credentials'),
      credentials_file: str('', { doc: 'lines written by `otlp-edge-agent passwd`; read again on SIGHUP' }),
      max_connections: int(
        20_000,
        1,
        1_000_000,
        'open device connections across all listeners; further ones are closed at once',
      ),
      connect_timeout: duration(
        '10s',
        100,
        'how long a new connection may take to send CONNECT (password checks after it are bounded by the login queue)',
      ),
      max_publish_rate: int(
        0,
        0,
        1_000_000,
        'messages a second one device connection may publish (a burst of as many passes); over it MQTT 5 gets PUBACK 0x97 (quota exceeded) and 3.1.1 a PUBACK with the message dropped, both told on the errors topic; 0 = no limit',
      ),
      receive_maximum: int(
        100,
        1,
        65535,
        'MQTT 5: QoS 1 and 2 publishes a device may have unacknowledged at once (advertised in CONNACK); more closes the connection with DISCONNECT 0x93',
      ),
      topic_alias_maximum: int(
        64,
        0,
        65535,
        'MQTT 5: topic aliases a device may set per connection (advertised in CONNACK); 0 = none',
      ),
      max_session_expiry: duration(
        '1h',
        0,
        'MQTT 5: the longest a session (its subscriptions) outlives its connection, whatever the device asks; sessions are kept in memory',
      ),
    }),
    sparkplug: obj({
      enabled: bool(
        false,
        'take Sparkplug B messages (edge nodes and their devices, under topic_root) as telemetry, on the embedded broker and in broker client mode',
      ),
      topic_root: str('spBv1.0', {
        pattern: /^[^/+#]+$/,
        expect: 'one topic level, without /, + or #',
        doc: 'the Sparkplug namespace: {topic_root}/{group}/{NBIRTH|NDATA|NDEATH|DBIRTH|DDATA|DDEATH}/{edge_node}[/{device}]',
      }),
      device_id: str('{group}:{edge_node}:{device}', {
        doc: "a Sparkplug device's device id, from {group}, {edge_node} and {device}",
      }),
      node_id: str('{group}:{edge_node}', {
        doc: "an edge node's own device id (its NBIRTH/NDATA metrics, its seq), from {group} and {edge_node}",
      }),
      reorder_timeout: duration(
        '2s',
        0,
        'how long a skipped Sparkplug seq may arrive late before it counts as lost (and a rebirth is asked)',
      ),
      request_rebirth: bool(
        true,
        'publish NCMD Node Control/Rebirth to an edge node whose data cannot be read (before its birth, unknown alias, lost messages)',
      ),
    }),
    client: obj({
      enabled: bool(false, 'subscribe to an existing broker (e.g. mosquitto)'),
      url: str('mqtt://127.0.0.1:1883', {
        doc: 'the broker to subscribe to',
        pattern: /^(mqtts?|wss?|tcp|ssl):\/\/./,
        expect: 'a URL such as mqtt://host:1883 or mqtts://host:8883',
      }),
      username: str('', { doc: 'login at the upstream broker' }),
      password: str('', { doc: 'its password; e.g. ${env:MQTT_PASSWORD}' }),
      client_id: str('', { doc: 'default: otlp-edge-agent-<agent.id>' }),
      ca: str('', { doc: 'PEM CA bundle for mqtts://' }),
      shared_group: str('', {
        pattern: /^[^/+#]*$/,
        expect: 'a group name without /, + or #',
        doc: '"$share/<group>/" subscriptions when set',
      }),
      protocol_version: oneOf(['4', '5'], '5', 'MQTT protocol level: 4 (3.1.1) or 5'),
    }),
    topics: obj({
      telemetry: str(DEFAULT_TOPICS.telemetry, { doc: 'where devices publish readings; one {deviceId} level' }),
      events: str(DEFAULT_TOPICS.events, { doc: 'where devices publish events' }),
      errors: str(DEFAULT_TOPICS.errors, { doc: 'where the agent tells a device why a message was refused' }),
    }),
  }),
  batch: obj({
    max_delay: duration('200ms', 1, 'longest a reading waits before its batch is committed'),
    max_points: int(5000, 1, 1_000_000, 'points per batch'),
  }),
  buffer: obj({
    max_bytes: size('256MiB', 64 * 1024, 'cap on stored batch bytes; the oldest batches are dropped past it'),
    zstd_level: int(3, 1, 19, 'zstd level of stored batches'),
    pack_after: duration(
      '30s',
      0,
      'batches not yet delivered this long after their commit are packed into compact records (about 1 byte a point), so the cap holds a long outage; 0 = never',
    ),
  }),
  uplink: obj({
    protocol: oneOf(
      ['uplink', 'otlp_http'],
      'uplink',
      'uplink: gRPC to aggregators; otlp_http: standard OTLP/HTTP to any endpoint',
    ),
    endpoints: list(['127.0.0.1:4317'], {
      doc: 'uplink: seed aggregators (host:port), the ring is learned from them; otlp_http: one base URL such as http://collector:4318',
    }),
    token: str('', { doc: 'sent as "authorization: Bearer …"; e.g. ${env:OTLP_EDGE_TOKEN}' }),
    tls: obj({
      enabled: bool(false, 'TLS to the aggregators'),
      ca: str('', { doc: "PEM CA bundle the aggregators' certificates are checked against; empty = the system's" }),
      insecure_skip_verify: bool(false, 'do not check the server certificate (tests only)'),
    }),
    max_in_flight: int(4, 1, 256, 'requests (each carrying many stored batches) sent and not yet acknowledged'),
    max_bytes_per_second: size('0', undefined, 'bytes on the wire per second; 0 = unlimited'),
    timeout: duration('30s', 100, 'how long one request waits for its acknowledgement'),
    max_delay: duration(
      '50ms',
      0,
      'longest a stored batch waits for others to share its request (counted from its commit); 0 = send at once',
    ),
  }),
  processors: variants(
    { memory_limiter: memoryLimiterSpec, attributes: attributesSpec, redaction: redactionSpec },
    'applied in order to device data before it is stored',
  ),
  http: obj({
    host: str('127.0.0.1', { doc: 'address of the operations port' }),
    port: port(9464, '/metrics /healthz /readyz; 0 = off'),
  }),
  log: obj({
    level: oneOf(
      ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
      'info',
      'pino JSON logs on stdout at this level and above',
    ),
  }),
});

export type AgentConfig = Infer<typeof agentConfigSpec>;

/** The gateway id: `agent.id`, or the host name cut to a valid id. */
export function gatewayId(cfg: AgentConfig): string {
  return cfg.agent.id !== '' ? cfg.agent.id : idFromHostName(hostname(), 'gateway');
}

/** The LevelDB directory of the buffer inside `agent.data_dir`. */
export const bufferDir = (cfg: AgentConfig) => join(cfg.agent.data_dir, 'buffer');

/** Reads and validates a config file; `path` '' gives the defaults. Throws ConfigError. */
export function loadAgentConfig(path: string, env: Record<string, string | undefined> = process.env): AgentConfig {
  return loadConfig(agentConfigSpec, path, env, (p) => readFileSync(p, 'utf8'), crossCheck);
}

/** Rules between keys, reported like any other problem. */
export function crossCheck(cfg: AgentConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = checkProcessors(cfg.processors, 'processors', { topics: true });
  const t = cfg.mqtt.broker.tls;
  if (cfg.mqtt.broker.enabled && t.port > 0) {
    if (t.cert === '')
      problems.push({
        path: 'mqtt.broker.tls.cert',
        message: 'required when mqtt.broker.tls.port is set (a PEM certificate file)',
      });
    if (t.key === '')
      problems.push({
        path: 'mqtt.broker.tls.key',
        message: 'required when mqtt.broker.tls.port is set (a PEM private key file)',
      });
  }
  if (t.require_client_cert && t.ca === '') {
    problems.push({
      path: 'mqtt.broker.tls.require_client_cert',
      message:
        'true needs mqtt.broker.tls.ca (the CA that signs device certificates): without it no certificate can be verified and every device is refused',
    });
  }
  const sp = cfg.mqtt.sparkplug;
  if (sp.enabled) {
    if (!sp.device_id.includes('{edge_node}') || !sp.device_id.includes('{device}'))
      problems.push({
        path: 'mqtt.sparkplug.device_id',
        message: `${JSON.stringify(sp.device_id)} must contain {edge_node} and {device}, or devices of different edge nodes share one id`,
      });
    if (!sp.node_id.includes('{edge_node}') || sp.node_id.includes('{device}'))
      problems.push({
        path: 'mqtt.sparkplug.node_id',
        message: `${JSON.stringify(sp.node_id)} must contain {edge_node} and not {device}`,
      });
  }
  return problems;
}
