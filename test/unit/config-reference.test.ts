import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderReference } from '../../protocol/config/reference.js';
import { agentConfigSpec } from '../../agent/config.js';
import { aggregatorConfigSpec } from '../../aggregator/config.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** The configuration references, generated from the schemas the binaries validate with. */
const references = [
  {
    file: 'deploy/agent.yaml',
    main: 'dist/agent/main.js',
    text: renderReference(agentConfigSpec, [
      'otlp-edge-agent configuration: every key at its default, with what it does.',
      'Generated from the schema the agent validates with (npm run docs); `otlp-edge-agent --config agent.yaml --check`',
      'validates a file. Strings take ${env:NAME} (or ${env:NAME:-default}); sizes 256MiB; durations 200ms, 30s, 7d.',
      'An unknown key, a bad value, or a key not available yet stops the agent at start, naming the key.',
    ]),
  },
  {
    file: 'deploy/aggregator.yaml',
    main: 'dist/aggregator/main.js',
    text: renderReference(aggregatorConfigSpec, [
      'otlp-edge-aggregator configuration: every key at its default, with what it does.',
      'Generated from the schema the aggregator validates with (npm run docs); `otlp-edge-aggregator --config',
      'aggregator.yaml --check` validates a file. Strings take ${env:NAME}; sizes 1GiB; durations 60s, 7d.',
      'An unknown key, a bad value, or a key not available yet stops the node at start, naming the key.',
    ]),
  },
];

test('the configuration references in deploy/ are what the schemas generate, and each loads with --check', () => {
  for (const r of references) {
    const path = join(root, r.file);
    if (process.env.WRITE_CONFIG_REFERENCE === '1') writeFileSync(path, r.text);
    assert.equal(
      readFileSync(path, 'utf8'),
      r.text,
      `${r.file} differs from the schema: run 'npm run docs' and commit the result`,
    );
    const check = spawnSync(process.execPath, [join(root, r.main), '--config', path, '--check'], { encoding: 'utf8' });
    assert.equal(check.status, 0, `${r.file}: ${check.stderr}`);
    assert.match(check.stdout, /configuration is valid/);
  }
});

test('every key of both schemas says what it does', () => {
  const undocumented: string[] = [];
  const walk = (spec: { kind: string; fields?: Record<string, any>; doc?: string }, path: string) => {
    if (spec.kind === 'object') for (const [k, v] of Object.entries(spec.fields!)) walk(v, path ? `${path}.${k}` : k);
    else if (!spec.doc) undocumented.push(path);
  };
  walk(agentConfigSpec, '');
  walk(aggregatorConfigSpec, '');
  assert.deepEqual(undocumented, []);
});
