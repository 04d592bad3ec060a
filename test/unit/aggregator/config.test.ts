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
  refused(
    'export: { enabled: true, endpoint: "http://collector:4318" }',
    /export: not available yet .*downstream export/,
  );
  refused('otlp_http: { port: 4318 }', /otlp_http: not available yet .*OTLP\/HTTP ingest/);
  refused('alerts: { rules: [] }', /alerts: not available yet/);
  refused('processors: []', /processors: not available yet/);
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
