import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Quotas, type QuotasConfig } from '../../../../aggregator/tenants/quotas.js';
import { aggregatorConfigSpec, crossCheck } from '../../../../aggregator/config.js';
import { validateConfig } from '../../../../protocol/config/schema.js';

const validate = (spec: typeof aggregatorConfigSpec, input: unknown) => {
  const { config, problems } = validateConfig(spec, input, { env: {} });
  return { value: config, problems };
};

const cfg = (c: unknown): QuotasConfig => {
  const { value, problems } = validate(aggregatorConfigSpec, { processors: [{ quotas: c }] });
  assert.deepEqual(problems, []);
  return value.processors[0].config as QuotasConfig;
};

test('a tenant takes its own limits, falling back to the default key by key; no tenant is never limited', () => {
  const q = new Quotas(
    cfg({
      default: { devices: 100, points_per_second: 1000 },
      tenants: { acme: { points_per_second: 10 }, globex: { devices: 0 } },
    }),
    { members: () => 1, share: () => 1 },
  );
  assert.deepEqual(q.limitsOf('acme'), {
    devices: 100,
    points_per_second: 10,
    events_per_second: 0,
    bytes_per_second: 0,
  });
  assert.deepEqual(q.limitsOf('globex'), {
    devices: 0,
    points_per_second: 1000,
    events_per_second: 0,
    bytes_per_second: 0,
  });
  assert.deepEqual(q.limitsOf('other'), {
    devices: 100,
    points_per_second: 1000,
    events_per_second: 0,
    bytes_per_second: 0,
  });
  assert.equal(q.admit('', 1e9, 1e9), null);
});

test('rates: a batch of any size passes an unspent second; the debt it leaves is waited out, then paid', () => {
  let now = 1_000_000;
  const q = new Quotas(
    cfg({ tenants: { acme: { points_per_second: 100 } } }),
    { members: () => 1, share: () => 1 },
    () => now,
  );
  assert.equal(q.admit('acme', 300, 0), null, 'taken: the bucket was full');
  const r = q.admit('acme', 1, 0);
  assert.equal(r?.quota, 'points_per_second');
  assert.equal(r?.retryAfterMs, 2000, '200 points of debt at 100/s');
  assert.match(r!.message, /tenant 'acme' is over its quota of 100 points per second/);
  now += 1000;
  assert.notEqual(q.admit('acme', 1, 0), null, 'still 100 in debt');
  now += 1001;
  assert.equal(q.admit('acme', 1, 0), null);
  assert.equal(q.admit('globex', 1e6, 0), null, 'another tenant has its own bucket (and no limit)');
});

test('a cluster divides rates by its members and devices by the node share', () => {
  let now = 0;
  const q = new Quotas(
    cfg({ default: { devices: 10, events_per_second: 300 } }),
    { members: () => 3, share: () => 0.34 },
    () => now,
  );
  assert.equal(q.deviceLimit('acme'), 4);
  assert.equal(q.admit('acme', 0, 100), null);
  assert.equal(q.admit('acme', 0, 1), null, '100 of this node’s 100/s: the bucket is empty, not in debt');
  assert.equal(q.admit('acme', 0, 1)?.quota, 'events_per_second');
  now += 20;
  assert.equal(q.admit('acme', 0, 1), null);
});

test('quotas without agent tokens, or listed twice, stop the process; a bad tenant name is named', () => {
  const check = (c: unknown) => {
    const { value, problems } = validate(aggregatorConfigSpec, c);
    return [...problems, ...crossCheck(value as never)].map((p) => `${p.path}: ${p.message}`);
  };
  assert.match(check({ processors: [{ quotas: {} }] }).join('\n'), /processors\[0\]\.quotas: needs tenants/);
  assert.match(
    check({ auth: { agent_tokens_file: '/x' }, processors: [{ quotas: {} }, { quotas: {} }] }).join('\n'),
    /processors\[1\]\.quotas: quotas is listed twice/,
  );
  assert.match(
    check({ processors: [{ quotas: { tenants: { 'a b': {} } } }] }).join('\n'),
    /processors\[0\]\.quotas\.tenants\.a b: expected a name of/,
  );
  assert.match(
    check({ processors: [{ quotas: { default: { devices: -5 } } }] }).join('\n'),
    /processors\[0\]\.quotas\.default\.devices: expected an integer from -1/,
  );
});

test('bytes: counted as received, refused past the rate like points', () => {
  let now = 0;
  const q = new Quotas(cfg({ default: { bytes_per_second: 1000 } }), { members: () => 1, share: () => 1 }, () => now);
  assert.equal(q.admit('t', 10, 0, 5000), null, 'an unspent second takes any batch');
  const r = q.admit('t', 1, 0, 10);
  assert.equal(r?.quota, 'bytes_per_second');
  assert.match(r!.message, /quota of 1000 bytes per second/);
  assert.equal(r?.retryAfterMs, 4000);
  now += 4001;
  assert.equal(q.admit('t', 1, 0, 10), null);
});
