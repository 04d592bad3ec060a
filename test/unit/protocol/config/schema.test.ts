import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bool,
  defaultsOf,
  duration,
  int,
  list,
  map,
  obj,
  oneOf,
  size,
  str,
  validateConfig,
} from '../../../../protocol/config/schema.js';
import { parseConfigText } from '../../../../protocol/config/parse.js';
import { formatDuration, formatSize, parseDuration, parseSize } from '../../../../protocol/config/units.js';
import { ConfigError } from '../../../../protocol/errors.js';

test('sizes read as operators write them', () => {
  assert.equal(parseSize('256MiB'), 256 * 1024 * 1024);
  assert.equal(parseSize('64KB'), 64_000);
  assert.equal(parseSize('1.5GiB'), 1.5 * 1024 ** 3);
  assert.equal(parseSize(' 10 kib '), 10240);
  assert.equal(parseSize(4096), 4096);
  assert.equal(parseSize('12'), 12);
  for (const bad of ['', 'MiB', '-1MiB', '5 parsecs', null, {}, -3]) assert.equal(parseSize(bad), null, String(bad));
  assert.equal(formatSize(256 * 1024 * 1024), '256MiB');
});

test('durations read as operators write them', () => {
  assert.equal(parseDuration('200ms'), 200);
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('7d'), 7 * 86_400_000);
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration(250), 250);
  for (const bad of ['soon', '5 fortnights', '', '1x2s', null]) assert.equal(parseDuration(bad), null, String(bad));
  assert.equal(formatDuration(60_000), '1m');
  assert.equal(formatDuration(200), '200ms');
});

const spec = obj({
  name: str('gw', { pattern: /^[a-z-]+$/, expect: 'lower-case letters and dashes' }),
  port: int(1883, 0, 65535),
  fast: bool(false),
  cap: size('1MiB', 1024),
  delay: duration('200ms', 1),
  mode: oneOf(['a', 'b'], 'a'),
  seeds: list(['x:1']),
  tags: map(),
  nested: obj({ deep: obj({ token: str('') }) }),
});

test('a missing document gives every default', () => {
  const { config, problems } = validateConfig(spec, {}, { env: {} });
  assert.deepEqual(problems, []);
  assert.deepEqual(config, {
    name: 'gw',
    port: 1883,
    fast: false,
    cap: 1048576,
    delay: 200,
    mode: 'a',
    seeds: ['x:1'],
    tags: {},
    nested: { deep: { token: '' } },
  });
  assert.ok(Object.isFrozen(config.nested.deep), 'the result is frozen');
  assert.deepEqual(defaultsOf(spec), {
    name: 'gw',
    port: 1883,
    fast: false,
    cap: '1MiB',
    delay: '200ms',
    mode: 'a',
    seeds: ['x:1'],
    tags: {},
    nested: { deep: { token: '' } },
  });
});

test('every problem is reported at once with its key path, the value and what was expected', () => {
  const { problems } = validateConfig(
    spec,
    {
      name: 'GW!',
      port: 70000,
      fast: 'yes',
      cap: '12 bananas',
      delay: 'soon',
      mode: 'c',
      seeds: 'x',
      tags: { a: { b: 1 } },
      nested: { deep: { tokn: 'x' } },
      extra: 1,
    },
    { env: {} },
  );
  const byPath = Object.fromEntries(problems.map((p) => [p.path, p.message]));
  assert.equal(byPath.name, 'expected lower-case letters and dashes, got "GW!"');
  assert.equal(byPath.port, 'expected an integer from 0 to 65535, got 70000');
  assert.equal(byPath.fast, 'expected true or false, got "yes"');
  assert.match(byPath.cap, /expected a size such as 256MiB.*got "12 bananas"/);
  assert.match(byPath.delay, /expected a duration such as 200ms.*got "soon"/);
  assert.equal(byPath.mode, 'expected one of a, b, got "c"');
  assert.equal(byPath.seeds, 'expected a list, got "x"');
  assert.equal(byPath['tags.a'], 'expected a string, got a mapping');
  assert.match(byPath['nested.deep.tokn'], /unknown key; expected one of: token/);
  assert.match(byPath.extra, /unknown key/);
  assert.equal(problems.length, 10);
});

test('${env:NAME} is substituted; an unset variable is a problem unless it has a default', () => {
  const ok = validateConfig(
    spec,
    { nested: { deep: { token: 'Bearer ${env:TOKEN}' } }, port: '${env:PORT}', seeds: ['${env:SEED}'] },
    { env: { TOKEN: 't0k', PORT: '8883', SEED: 'h:1' } },
  );
  assert.deepEqual(ok.problems, []);
  assert.equal(ok.config.nested.deep.token, 'Bearer t0k');
  assert.equal(ok.config.port, 8883);
  assert.deepEqual(ok.config.seeds, ['h:1']);
  const missing = validateConfig(
    spec,
    { nested: { deep: { token: '${env:NOPE}' } }, name: '${env:NAME:-fallback}' },
    { env: {} },
  );
  assert.equal(missing.config.name, 'fallback');
  assert.equal(missing.problems.length, 1);
  assert.equal(missing.problems[0].path, 'nested.deep.token');
  assert.match(missing.problems[0].message, /NOPE is not set/);
});

test('parseConfigText throws one ConfigError listing every problem, or for text that is not YAML', () => {
  assert.throws(
    () => parseConfigText(spec, 'port: 99999\nmode: z\n', 'agent.yaml', {}),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.code === 'OTLPEDGE_CONFIG_INVALID' &&
      /agent\.yaml \(2 problems\)/.test(e.message) &&
      /port: expected/.test(e.message) &&
      /mode: expected/.test(e.message),
  );
  assert.throws(
    () => parseConfigText(spec, 'port: [1,\n', 'bad.yaml', {}),
    (e: unknown) => e instanceof ConfigError && e.code === 'OTLPEDGE_CONFIG_UNREADABLE',
  );
  assert.equal(parseConfigText(spec, '', 'empty.yaml', {}).port, 1883);
});
