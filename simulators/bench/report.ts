import { availableParallelism } from 'node:os';

/**
 * How every benchmark reports: one JSON document (for scripts and CI history) and one aligned table (for people),
 * each figure beside the baseline measured in the same run, so ratios hold on any machine.
 */

export interface BenchRow {
  /** What was measured, e.g. "OTLP encode". */
  name: string;
  value: number;
  /** Unit of `value`, e.g. "points/s", "B/point". */
  unit: string;
  /** The same figure for the baseline measured in this run, when there is one. */
  baseline?: { name: string; value: number };
  /** A budget or goal to print beside the figure, e.g. ">= 1,000,000". */
  budget?: string;
  note?: string;
}

export interface BenchReport {
  bench: string;
  node: string;
  cpus: number;
  startedAt: string;
  rows: BenchRow[];
}

/** value / baseline, or null without one; the caller decides which direction is better. */
export function ratio(row: BenchRow): number | null {
  return row.baseline && row.baseline.value !== 0 ? row.value / row.baseline.value : null;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(3);
}

export function table(report: BenchReport): string {
  const head = ['figure', 'value', 'unit', 'baseline', 'ratio', 'budget'];
  const body = report.rows.map((r) => {
    const q = ratio(r);
    return [
      r.name + (r.note ? ` (${r.note})` : ''),
      fmt(r.value),
      r.unit,
      r.baseline ? `${fmt(r.baseline.value)} ${r.baseline.name}` : '',
      q === null ? '' : `${q.toFixed(2)}x`,
      r.budget ?? '',
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 1 || i === 4 ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** The report as a Markdown table (the README's performance section is made from it), with the machine it ran on. */
export function markdown(report: BenchReport): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const rows = report.rows.map((r) => {
    const q = ratio(r);
    return `| ${cell(r.name + (r.note ? ` (${r.note})` : ''))} | ${fmt(r.value)} ${cell(r.unit)} | ${r.baseline ? `${fmt(r.baseline.value)} ${cell(r.baseline.name)}` : ''} | ${q === null ? '' : `${q.toFixed(2)} ×`} | ${cell(r.budget ?? '')} |`;
  });
  return [
    `Measured ${report.startedAt.slice(0, 10)} with Node ${report.node} on ${report.cpus} CPUs (\`otlp-edge-sim bench\`).`,
    '',
    '| figure | value | baseline (same run) | ratio | budget |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}

/** Prints the table to stderr-free stdout: the JSON line first (one line, easy to grep), then the table. */
export function print(report: BenchReport): void {
  process.stdout.write(JSON.stringify(report) + '\n\n' + table(report) + '\n');
}

export function newReport(bench: string): BenchReport {
  return { bench, node: process.version, cpus: availableParallelism(), startedAt: new Date().toISOString(), rows: [] };
}

/**
 * Runs `fn` repeatedly for at least `minMs` after a warm-up and returns operations per second, where each call
 * performs `opsPerCall` operations.
 */
export function opsPerSecond(fn: () => void, opsPerCall: number, minMs = 500): number {
  const warm = process.hrtime.bigint() + 100_000_000n;
  while (process.hrtime.bigint() < warm) fn();
  let calls = 0;
  const start = process.hrtime.bigint();
  const stop = start + BigInt(minMs) * 1_000_000n;
  let now = start;
  while (now < stop) {
    fn();
    calls++;
    now = process.hrtime.bigint();
  }
  return (calls * opsPerCall) / (Number(now - start) / 1e9);
}
