import { hostname } from 'node:os';
import { samplingSpec } from './tenants/sampling.js';
import { quotasSpec } from './tenants/quotas.js';
import { readFileSync } from 'node:fs';
import {
  bool,
  duration,
  id,
  int,
  list,
  map,
  num,
  obj,
  objects,
  oneOf,
  size,
  str,
  variants,
  type Infer,
} from '../protocol/config/schema.js';
import { loadConfig } from '../protocol/config/parse.js';
import { crossCheck } from './config-check.js';
import type { Tier } from './state/tiers.js';
import { attributesSpec, memoryLimiterSpec, redactionSpec } from '../runtime/processors/spec.js';
import { ID_CHARS, idFromHostName, MAX_ID_LENGTH } from '../protocol/ids.js';

/**
 * The aggregator's configuration (`otlp-edge-aggregator --config aggregator.yaml`). Key names are a public contract
 * (deploy/aggregator.yaml); every key has a default; `${env:NAME}` works in strings.
 */

const port = (d: number, doc: string) => int(d, 0, 65535, doc);

export const aggregatorConfigSpec = obj({
  node: obj({
    id: id('node id; default: the host name'),
    data_dir: str('./data/aggregator', { doc: 'LevelDB state' }),
  }),
  grpc: obj({
    host: str('0.0.0.0', { doc: 'address the gRPC port binds' }),
    port: port(4317, 'uplink, OTLP/gRPC and peer services'),
  }),
  otlp_http: obj({
    enabled: bool(true, 'OTLP/HTTP ingest: POST /v1/metrics, /v1/logs, /v1/traces (protobuf or JSON; gzip, zstd)'),
    host: str('0.0.0.0', { doc: 'address the OTLP/HTTP port binds' }),
    port: port(4318, 'OTLP/HTTP port'),
    max_body_bytes: size('16MiB', 1024, 'largest request body as sent; larger is answered 413'),
    max_inflated_bytes: size('64MiB', 1024, 'largest request once decompressed; larger is answered 413'),
  }),
  otlp: obj({
    max_in_flight_bytes: size(
      '128MiB',
      1 << 20,
      'OTLP request bytes (both transports) handled at once; past it new requests are answered 429 / UNAVAILABLE with a retry delay',
    ),
  }),
  api: obj({
    host: str('0.0.0.0', { doc: 'address the HTTP API binds' }),
    port: port(8080, 'JSON API, live stream (GET /v1/stream), web page (/), /metrics, /healthz, /readyz'),
    page: bool(true, 'serve the web page at / (false: the API only)'),
    stream: obj({
      max_connections: int(100, 1, 10_000, 'WebSocket stream clients at once; more are answered 503'),
      max_devices: int(1000, 1, 100_000, 'device ids and prefixes one stream may name'),
      queue: int(
        10_000,
        100,
        1_000_000,
        'messages waiting for one slow client; past it the oldest are dropped, counted and announced',
      ),
      slow_after: duration(
        '15s',
        1000,
        'a client still dropping messages after this long is disconnected (close code 4008)',
      ),
      ticket_ttl: duration('30s', 1000, 'lifetime of a one-use stream ticket (POST /v1/stream/tickets)'),
    }),
  }),
  auth: obj({
    agent_tokens_file: str('', {
      doc: 'lines "AGENT_ID TOKEN [TENANT]" (an agent or OTLP source, and the tenant it belongs to); empty = accept any agent (development only); read again on SIGHUP',
    }),
    api_tokens_file: str('', {
      doc: 'lines "TOKEN ROLE [NAME]", ROLE read | admin; empty = API open (development only); read again on SIGHUP',
    }),
  }),
  tls: obj({
    enabled: bool(false, 'serve gRPC (uplink, peers) over TLS; peer channels then use TLS too'),
    cert: str('', { doc: 'PEM certificate file (required with enabled)' }),
    key: str('', { doc: 'PEM private key file (required with enabled)' }),
    ca: str('', { doc: "PEM CA bundle that peer certificates are checked against; empty = the system's" }),
  }),
  cluster: obj({
    members: list([], {
      doc: 'static membership, this node included; empty with no dns = a single node',
      pattern: new RegExp(`^${ID_CHARS}{1,${MAX_ID_LENGTH}}=[^\\s=]+:\\d{1,5}$`),
      expect: 'ID=HOST:PORT, e.g. agg-0=10.0.0.1:4317',
    }),
    dns: str('', { doc: 'a name whose A/AAAA records are the members (a Kubernetes headless Service)' }),
    advertise: str('', {
      pattern: /^$|^[^\s=]+:\d{1,5}$/,
      expect: 'HOST:PORT other nodes and agents reach this node at, or empty',
      doc: 'the address this node is known by in the ring; default: its cluster.members entry, else grpc.host:grpc.port, else (grpc.host 0.0.0.0 with cluster.dns) the DNS record that points at it',
    }),
    vnodes: int(128, 1, 4096, 'virtual nodes per member'),
    probe_interval: duration('1s', 100, 'how often members probe each other'),
    failure_timeout: duration('5s', 200, 'a member failing probes this long leaves the ring'),
    dns_interval: duration('10s', 1000, 'how often cluster.dns is resolved again'),
    dns_server: str('', {
      doc: 'the DNS resolver cluster.dns is asked at',
      pattern: /^$|^[^\s:]+:\d{1,5}$/,
      expect: 'host:port of a DNS resolver, or empty for the system resolver',
    }),
    secret_file: str('', {
      doc: 'a file holding the secret shared by all members (at least 16 bytes); every peer call is signed with it and unsigned calls are refused; required when auth.agent_tokens_file is set',
    }),
    tls_server_name: str('', {
      doc: 'with tls.enabled: the name peer certificates are checked against; default: the host of the member address',
    }),
  }),
  devices: obj({
    offline_after: duration('60s', 1000, 'silence after which a device counts as offline'),
    rollup_retention: duration('7d', 60_000, 'how long 1-minute rollups are kept; then they roll into hourly ones'),
    hourly_retention: duration(
      '30d',
      0,
      'how long 1-hour rollups (of expired 1-minute ones) are kept; then they roll into daily ones; 0 = no hourly tier',
    ),
    daily_retention: duration('365d', 0, 'how long 1-day rollups are kept; 0 = no daily tier'),
    max_metrics: int(
      1000,
      1,
      65_535,
      'distinct metric names kept per device; readings of further names are dropped and counted',
    ),
  }),
  export: objects(
    obj({
      enabled: bool(true, 'false keeps the entry but sends nothing (its queue stays on disk)'),
      name: str('', {
        pattern: new RegExp(`^$|^${ID_CHARS}{1,64}$`),
        expect: 'a name of letters, digits and ._:- (or empty)',
        doc: "the exporter's name in metrics, logs and its queue's keys; default: the protocol (then -2, -3… for more of one protocol); renaming it starts a new queue",
      }),
      protocol: oneOf(['otlp_http', 'otlp_grpc', 'prometheus_remote_write'], 'otlp_http', 'where it sends'),
      endpoint: str('', {
        doc: 'otlp_http: a base URL (http://collector:4318; requests go to /v1/metrics…); otlp_grpc: host:port, or https://host:port for TLS; prometheus_remote_write: the full URL (http://prometheus:9090/api/v1/write)',
      }),
      headers: map('sent with every request, e.g. authorization: "Bearer ${env:BACKEND_TOKEN}"'),
      tls: obj({
        ca: str('', { doc: "PEM CA bundle the backend's certificate is checked against; empty = the system's" }),
        insecure_skip_verify: bool(false, 'do not check the certificate (testing only)'),
      }),
      compression: oneOf(
        ['gzip', 'zstd', 'none'],
        'gzip',
        'request compression (otlp_grpc: gzip or none; remote write: snappy, always)',
      ),
      mode: oneOf(
        ['raw', 'rollup'],
        'raw',
        "raw: the data as received; rollup: each device metric's closed 1-minute buckets (count, sum, min, max, last)",
      ),
      signals: list(['metrics', 'logs', 'traces'], {
        pattern: /^(metrics|logs|traces)$/,
        expect: 'metrics, logs or traces',
        doc: 'signals this exporter takes (prometheus_remote_write: metrics only)',
      }),
      batch: obj({
        max_delay: duration('1s', 0, 'longest a queued point waits for company'),
        max_points: int(10_000, 1, 1_000_000, 'points per request'),
      }),
      queue: obj({
        max_bytes: size(
          '1GiB',
          1 << 20,
          'durable queue cap (stored bytes); past it the oldest requests are dropped and counted',
        ),
      }),
      timeout: duration('10s', 100, 'deadline of one request'),
      max_in_flight: int(
        0,
        0,
        64,
        'requests sent at once; 0 = 4 (OTLP) or 1 (remote write, where a later request sent first makes the earlier one out of order)',
      ),
      resource_labels: list([], {
        doc: 'prometheus_remote_write: resource attributes copied onto every series as labels (device.id always is, as device_id)',
      }),
      target_info: bool(
        true,
        'prometheus_remote_write: a target_info series per resource holding its other attributes',
      ),
    }),
    'downstream export (OTLP/HTTP, OTLP/gRPC, Prometheus remote write) through a durable queue per exporter',
  ),
  alerts: obj({
    evaluation_interval: duration('5s', 1000, 'how often each node evaluates the alerts of the devices it owns'),
    resend_interval: duration(
      '1m',
      5000,
      'firing alerts are sent again this often; Alertmanager resolves one not sent again within 4 × this',
    ),
    labels: map('labels added to every alert, e.g. { cluster: eu-1 }'),
    page_url: str('', {
      pattern: /^$|^https?:\/\/\S+$/,
      expect: 'an http:// or https:// URL, or empty',
      doc: "the page's address as people reach it, linked from each alert (Alertmanager generatorURL); empty = http://<host name>:<api.port>/",
    }),
    offline: obj({
      enabled: bool(true, 'DeviceOffline fires when a device is silent past devices.offline_after'),
      severity: str('warning', { pattern: /^[A-Za-z0-9_.-]{1,32}$/, expect: 'a severity word', doc: 'its severity' }),
    }),
    missing: obj({
      enabled: bool(true, "DeviceMissingReadings fires when a device's missing count rises"),
      severity: str('warning', { pattern: /^[A-Za-z0-9_.-]{1,32}$/, expect: 'a severity word', doc: 'its severity' }),
      resolve_after: duration(
        '10m',
        1000,
        'it resolves when the gaps are filled, or after this long without a new gap',
      ),
    }),
    rules: objects(
      obj({
        name: str('', {
          pattern: /^$|^[A-Za-z_][A-Za-z0-9_]{0,127}$/,
          expect: 'an alert name of letters, digits and _ (e.g. HighTemperature)',
          doc: 'the alertname',
        }),
        metric: str('', { doc: 'the metric compared (its latest value)' }),
        devices: str('*', { doc: 'device ids the rule covers: a glob (* any run, ? one character)' }),
        op: oneOf(['>', '>=', '<', '<=', '==', '!='], '>', 'comparison of the latest value with value'),
        value: num(0, -1e300, 1e300, 'the threshold'),
        for: duration('0s', 0, 'how long the comparison must hold before the alert fires'),
        severity: str('warning', { pattern: /^[A-Za-z0-9_.-]{1,32}$/, expect: 'a severity word', doc: 'its severity' }),
      }),
      'threshold rules on the latest value of a metric, per device',
    ),
    alertmanager: obj({
      url: str('', { doc: 'Prometheus Alertmanager base URL (API v2: POST /api/v2/alerts); empty = off' }),
      headers: map('sent with every request, e.g. authorization: "Bearer ${env:AM_TOKEN}"'),
      timeout: duration('10s', 100, 'deadline of one request'),
    }),
    webhooks: objects(
      obj({
        url: str('', { doc: 'receives POSTs of JSON alert changes' }),
        secret_file: str('', {
          doc: 'a file holding an HMAC-SHA256 key (its text, surrounding whitespace ignored); requests then carry X-Otlp-Edge-Signature: sha256=<hex HMAC of the body>',
        }),
        events: list(['device_offline', 'device_online', 'missing', 'rule'], {
          pattern: /^(device_offline|device_online|missing|rule)$/,
          expect: 'device_offline, device_online, missing or rule',
          doc: 'the changes it receives',
        }),
        headers: map('sent with every request'),
        timeout: duration('10s', 100, 'deadline of one request'),
      }),
      'generic webhooks (JSON, optional HMAC signature)',
    ),
    max_active: int(100_000, 1, 10_000_000, 'alerts held active per node; past it new ones are counted, not raised'),
  }),
  processors: variants(
    {
      memory_limiter: memoryLimiterSpec,
      attributes: attributesSpec,
      redaction: redactionSpec,
      quotas: quotasSpec,
      sampling: samplingSpec,
    },
    'applied in order to what the node takes in',
  ),
  log: obj({
    level: oneOf(
      ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
      'info',
      'pino JSON logs on stdout at this level and above (the audit log always writes)',
    ),
  }),
});

export type AggregatorConfig = Infer<typeof aggregatorConfigSpec>;

/** The coarser rollup tiers kept: 1 hour and 1 day, unless their retention is 0. */
export function rollupTiers(cfg: AggregatorConfig): Tier[] {
  const tiers: Tier[] = [];
  if (cfg.devices.hourly_retention > 0) tiers.push({ resolutionMin: 60, retentionMs: cfg.devices.hourly_retention });
  if (cfg.devices.daily_retention > 0) tiers.push({ resolutionMin: 1440, retentionMs: cfg.devices.daily_retention });
  return tiers;
}

export function nodeId(cfg: AggregatorConfig): string {
  return cfg.node.id !== '' ? cfg.node.id : idFromHostName(hostname(), 'aggregator');
}

export { crossCheck, exporterNames } from './config-check.js';

export function loadAggregatorConfig(
  path: string,
  env: Record<string, string | undefined> = process.env,
): AggregatorConfig {
  return loadConfig(aggregatorConfigSpec, path, env, (p) => readFileSync(p, 'utf8'), crossCheck);
}
