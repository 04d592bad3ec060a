import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../protocol/errors.js';
import { parseConfigText } from '../../../protocol/config/parse.js';
import { aggregatorConfigSpec, crossCheck } from '../../../aggregator/config.js';

const parse = (text: string, env: Record<string, string> = {}) =>
  parseConfigText(aggregatorConfigSpec, text, 'aggregator.yaml', env);

test('cluster keys: defaults, advertise from the environment (a pod IP), and errors that name the key', () => {
  const d = parse('');
  assert.deepEqual([d.cluster.members, d.cluster.dns, d.cluster.advertise, d.cluster.vnodes], [[], '', '', 128]);
  assert.equal(
    parse('cluster: { dns: aggs.ns.svc, advertise: "${env:POD_IP}:4317" }', { POD_IP: '10.1.2.3' }).cluster.advertise,
    '10.1.2.3:4317',
  );
  assert.throws(
    () => parse('cluster: { advertise: "10.1.2.3" }'),
    (e: unknown) =>
      e instanceof ConfigError &&
      /cluster\.advertise/.test(e.message) &&
      /HOST:PORT/.test(e.message) &&
      /10\.1\.2\.3/.test(e.message),
  );
  assert.throws(
    () => parse('cluster: { members: ["agg-0 10.0.0.1:4317"] }'),
    (e: unknown) => e instanceof ConfigError && /cluster\.members/.test(e.message) && /ID=HOST:PORT/.test(e.message),
  );
});

const strict = (text: string) => parseConfigText(aggregatorConfigSpec, text, 'aggregator.yaml', {}, crossCheck);
const refused = (text: string, ...patterns: RegExp[]) =>
  assert.throws(
    () => strict(text),
    (e: unknown) => e instanceof ConfigError && patterns.every((p) => p.test(e.message)),
  );

test('documented keys that are not built yet stop the node at start instead of being ignored', () => {
  refused('processors: [ { tail_sampling: {} } ]', /processors\[0\]: expected a mapping with one key naming one of/);
  refused(
    'processors: [ { sampling: { keep_severity_at_least: critical } } ]',
    /processors\[0\]\.sampling\.keep_severity_at_least: expected one of trace, debug, info, warn, error, fatal/,
  );
  refused('processors: [ { sampling: {} }, { sampling: {} } ]', /processors\[1\]\.sampling: sampling is listed twice/);
  refused(
    'processors: [ { redaction: { include: { topics: [ "devices/#" ] } } } ]',
    /processors\[0\]\.redaction\.include\.topics: data here has no MQTT topic/,
  );
  refused(
    'processors: [ { attributes: { actions: [ { key: x, action: insert } ] } } ]',
    /processors\[0\]\.attributes\.actions\[0\]/,
  );
  refused('processors: [ { memory_limiter: {} } ]', /processors\[0\]\.memory_limiter\.limit: set exactly one of/);
  assert.equal(strict('processors: [ { memory_limiter: { limit: 1GiB } } ]').processors[0].kind, 'memory_limiter');
  assert.equal(strict('devices: { max_metrics: 50 }').devices.max_metrics, 50);
  assert.equal(strict('').devices.max_metrics, 1000);
});

test('rules between keys: TLS files, a cluster secret when agents need tokens, member addresses that fit', () => {
  refused('tls: { enabled: true }', /tls\.cert: required/, /tls\.key: required/);
  refused(
    'auth: { agent_tokens_file: /etc/t } \ncluster: { members: ["a=10.0.0.1:4317"] }',
    /cluster\.secret_file: required in a cluster when auth\.agent_tokens_file is set/,
  );
  assert.equal(
    strict('auth: { agent_tokens_file: /etc/t } \ncluster: { members: ["a=10.0.0.1:4317"], secret_file: /etc/s }')
      .cluster.secret_file,
    '/etc/s',
  );
  refused(`cluster: { members: ["a=${'h'.repeat(300)}:4317"] }`, /cluster\.members\[0\]: address .* at most 255 bytes/);
  refused(
    `cluster: { advertise: "${'h'.repeat(300)}:4317" }`,
    /cluster\.advertise: expected HOST:PORT of at most 255 bytes/,
  );
});

test('export: one mapping or a list; each entry checked (endpoint, protocol rules, unique names); remote write one request at a time', () => {
  const one = strict('export: { endpoint: "http://collector:4318" }');
  assert.equal(one.export.length, 1);
  assert.equal(one.export[0].protocol, 'otlp_http');
  assert.equal(one.export[0].queue.max_bytes, 1 << 30);
  const two = strict(
    'export: [ { endpoint: "http://c:4318" }, { protocol: prometheus_remote_write, endpoint: "http://p:9090/api/v1/write", signals: [metrics] } ]',
  );
  assert.equal(two.export.length, 2);
  assert.equal(strict('export: { enabled: false }').export[0].enabled, false);
  refused('export: { protocol: otlp_http }', /export\.endpoint: required/);
  refused(
    'export: { protocol: otlp_grpc, endpoint: "c:4317", compression: zstd }',
    /export\.compression: otlp_grpc sends gzip or none/,
  );
  refused('export: { protocol: otlp_grpc, endpoint: "http://c" }', /export\.endpoint: expected host:port/);
  refused('export: { endpoint: "collector:4318" }', /export\.endpoint: expected an http/);
  refused(
    'export: [ { endpoint: "http://a:1", name: x }, { endpoint: "http://b:1", name: x } ]',
    /export\[1\]\.name: "x" names two exporters/,
  );
  assert.equal(strict('export: { endpoint: "http://a:1", mode: rollup }').export[0].mode, 'rollup');
  refused(
    'export: { protocol: prometheus_remote_write, endpoint: "http://p:9090/api/v1/write", max_in_flight: 4 }',
    /export\.max_in_flight: prometheus_remote_write sends one request at a time/,
  );
  refused(
    'export: { endpoint: "http://a:1", signals: [spans] }',
    /export\.signals\[0\]: expected metrics, logs or traces/,
  );
  refused('export: 3', /export: expected a mapping or a list of mappings/);
  assert.equal(strict('otlp_http: { port: 14318 }').otlp_http.port, 14318);
});

test('rollup tiers: each kept tier reaches further back than the finer ones, or is 0', () => {
  refused(
    'devices: { rollup_retention: 7d, hourly_retention: 2d }',
    /devices\.hourly_retention: 2d must be longer than devices\.rollup_retention \(7d\), or 0/,
  );
  refused(
    'devices: { hourly_retention: 0, daily_retention: 3d }',
    /devices\.daily_retention: 3d must be longer than devices\.rollup_retention \(7d\)/,
  );
  assert.equal(strict('devices: { hourly_retention: 0 }').devices.hourly_retention, 0);
  assert.equal(strict('').devices.daily_retention, 365 * 86_400_000);
});
