#!/usr/bin/env node
// Runs every compiled node:test suite under dist/test (unit, integration, interop, fault), or only those whose path
// contains one of the given words: `node test/run.mjs unit ring`. `npm test` builds first, then calls this.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = join(root, 'dist', 'test');

function find(d) {
  const out = [];
  for (const name of readdirSync(d)) {
    const p = join(d, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = find(dir)
  .filter((f) => filters.length === 0 || filters.some((w) => relative(dir, f).includes(w)))
  .sort();
if (files.length === 0) {
  console.error(
    `no test files under ${dir}${filters.length ? ` matching ${filters.join(', ')}` : ''}; run 'npm run build' first`,
  );
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, ...files], {
  stdio: 'inherit',
  cwd: root,
});
process.exit(r.status ?? 1);
