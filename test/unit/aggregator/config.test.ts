import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../protocol/errors.js';
import { parseConfigText } from '../../../protocol/config/parse.js';
import { aggregatorConfigSpec } from '../../../aggregator/config.js';

const parse = (text: string, env: Record<string, string> = {}) => parseConfigText(aggregatorConfigSpec, text, 'aggregator.yaml', env);

test('cluster keys: defaults, advertise from the environment (a pod IP), and errors that name the key', () => {
  const d = parse('');
  assert.deepEqual([d.cluster.members, d.cluster.dns, d.cluster.advertise, d.cluster.vnodes], [[], '', '', 128]);
  assert.equal(parse('cluster: { dns: aggs.ns.svc, advertise: "${env:POD_IP}:4317" }', { POD_IP: '10.1.2.3' }).cluster.advertise, '10.1.2.3:4317');
  assert.throws(() => parse('cluster: { advertise: "10.1.2.3" }'), (e: unknown) =>
    e instanceof ConfigError && /cluster\.advertise/.test(e.message) && /HOST:PORT/.test(e.message) && /10\.1\.2\.3/.test(e.message));
  assert.throws(() => parse('cluster: { members: ["agg-0 10.0.0.1:4317"] }'), (e: unknown) =>
    e instanceof ConfigError && /cluster\.members/.test(e.message) && /ID=HOST:PORT/.test(e.message));
});
