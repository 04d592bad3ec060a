import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const CODE = /OTLPEDGE_[A-Z0-9_]*[A-Z0-9]/g;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : name.endsWith('.ts') ? [p] : [];
  });
}

test('every error code in the code is documented in ERRORS.md, and every documented code exists', () => {
  const used = new Set<string>();
  for (const area of ['protocol', 'runtime', 'agent', 'aggregator', 'simulators']) {
    for (const file of sources(join(root, area))) {
      // A prefix sliced off codes (`'OTLPEDGE_AUTH_'.length`) is not a code.
      for (const m of readFileSync(file, 'utf8').matchAll(CODE))
        if (!readFileSync(file, 'utf8').includes(`'${m[0]}_'`)) used.add(m[0]);
    }
  }
  const documented = new Set([...readFileSync(join(root, 'ERRORS.md'), 'utf8').matchAll(CODE)].map((m) => m[0]));
  assert.deepEqual([...used].filter((c) => !documented.has(c)).sort(), [], 'codes missing from ERRORS.md');
  assert.deepEqual(
    [...documented].filter((c) => !used.has(c)).sort(),
    [],
    'ERRORS.md lists codes the code does not have',
  );
});
