import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../../helpers/process.js';
import { tempDir } from '../../helpers/tmp.js';

const run = promisify(execFile);

// Correctness only: the shape of the whole-table run, every figure present and finite; nothing about speed.
test(
  'bench --quick runs every benchmark into one report, as JSON, a table and Markdown',
  { timeout: 300_000 },
  async (t) => {
    const dir = tempDir(t);
    const json = join(dir, 'bench.json');
    const md = join(dir, 'bench.md');
    const r = await run(
      process.execPath,
      [join(repoRoot, 'dist', 'simulators', 'main.js'), 'bench', '--quick', '--json', json, '--markdown', md],
      { maxBuffer: 1 << 24 },
    );
    const report = JSON.parse(readFileSync(json, 'utf8'));
    const line = r.stdout.split('\n').find((l) => l.startsWith('{"bench"'));
    assert.ok(line, 'the report as one JSON line on stdout');
    assert.deepEqual(JSON.parse(line), report, 'stdout has the same JSON');
    assert.equal(report.bench, 'all (quick)');
    const parts = new Set(report.rows.map((row: { name: string }) => row.name.split(':')[0]));
    assert.deepEqual([...parts], ['protocol', 'agent', 'field', 'uplink', 'aggregator', 'cluster']);
    for (const row of report.rows) {
      assert.ok(Number.isFinite(row.value), `${row.name}: ${row.value}`);
      assert.ok(row.unit, `${row.name} has a unit`);
      if (row.baseline) assert.ok(Number.isFinite(row.baseline.value), `${row.name}: baseline ${row.baseline.value}`);
      // Every budget gets a verdict (a ratio budget needs its baseline, which every such row has here).
      if (row.budget) assert.equal(typeof row.pass, 'boolean', `${row.name} judged`);
    }
    // Field load: every acknowledged reading reached the aggregator (an accounting by device seq, not a timing).
    const loss = report.rows.find((row: { name: string }) => /^field: loss/.test(row.name));
    assert.equal(loss?.value, 0, 'no acknowledged reading lost at field load');
    assert.equal(loss?.pass, true);
    const names = report.rows.map((row: { name: string }) => row.name).join('\n');
    for (const figure of [
      /agent: agent ingest, QoS 1/,
      /uplink: .*bytes/i,
      /uplink: .*latency/i,
      /aggregator: aggregator ingest per node/,
      /field: agent RSS idle, uplink connected/,
      /field: agent RSS, 1,000 devices at 1 reading\/s, uplink connected/,
      /field: agent RSS vs mosquitto, 1,000 devices/,
      /field: device → aggregator latency p999/,
      /field: agent CPU with 1,000 connected quiet devices/,
      /field: QoS 1 ack latency p99, 1,000 devices at 1 reading\/s/,
      /field: agent event-loop delay p99, 1,000 devices at 1 reading\/s/,
    ])
      assert.match(names, figure);
    const table = readFileSync(md, 'utf8');
    assert.match(table, /^Measured \d{4}-\d\d-\d\d with Node v\d+/);
    assert.equal(
      table.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| ---')).length,
      report.rows.length + 1,
      'a line per row',
    );
    assert.match(r.stderr, /bench cluster done in \d+ s/);
    assert.match(r.stdout, /\d+ of \d+ budgets kept/);
  },
);
