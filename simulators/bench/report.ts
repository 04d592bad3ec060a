import { availableParallelism } from 'node:os';

/**
 * How every benchmark reports: one JSON document (for scripts and CI history) and one aligned table (for people),
 * each figure beside the baseline measured in the same run, so ratios hold on any machine.
 */

/**
 * A bound on a figure: `value op bound`, or with `ratio` the figure's ratio to its baseline (`0.75` = 0.75 ×).
 * A row's budget is what a change must not fall below (its verdict is pass or FAIL); its goal is where the
 * project is headed (reported, never failed).
 */
export interface Limit {
  op: '>=' | '<=';
  bound: number;
  ratio?: boolean;
  /** What the bound is about when the row does not say, e.g. "batch.max_points". */
  note?: string;
}

export interface BenchRow {
  /** What was measured, e.g. "OTLP encode". */
  name: string;
  value: number;
  /** Unit of `value`, e.g. "points/s", "B/point". */
  unit: string;
  /** The same figure for the baseline measured in this run, when there is one. */
  baseline?: { name: string; value: number };
  budget?: Limit;
  goal?: Limit;
  /** Set by `judge`: whether the figure keeps its budget / reaches its goal (absent without one, or without the
   *  baseline a ratio needs). */
  pass?: boolean;
  goalMet?: boolean;
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

/** Whether `row` keeps `limit`; null when the limit is a ratio and the row has no baseline. */
export function meets(row: BenchRow, limit: Limit): boolean | null {
  const v = limit.ratio ? ratio(row) : row.value;
  if (v === null || !Number.isFinite(v)) return v === null ? null : false;
  // Ratios are printed to two decimals: a figure shown as 0.75x keeps a budget of 0.75x.
  const x = limit.ratio ? Math.round(v * 100) / 100 : v;
  return limit.op === '>=' ? x >= limit.bound : x <= limit.bound;
}

/** Sets every row's `pass` / `goalMet`; returns the rows that miss their budget. */
export function judge(report: BenchReport): BenchRow[] {
  for (const row of report.rows) {
    const pass = row.budget ? meets(row, row.budget) : null;
    const goal = row.goal ? meets(row, row.goal) : null;
    if (pass === null) delete row.pass;
    else row.pass = pass;
    if (goal === null) delete row.goalMet;
    else row.goalMet = goal;
  }
  return report.rows.filter((r) => r.pass === false);
}

export function fmtLimit(l: Limit | undefined): string {
  if (!l) return '';
  const n = Number.isInteger(l.bound) ? l.bound.toLocaleString('en-US') : String(l.bound);
  const bound = l.ratio ? `${n}x` : n;
  return `${l.op} ${bound}${l.note ? ` (${l.note})` : ''}`;
}

function verdict(r: BenchRow): string {
  if (r.pass === undefined) return r.goalMet ? 'goal met' : '';
  return (r.pass ? 'pass' : 'FAIL') + (r.goalMet ? ', goal met' : '');
}

const label = (r: BenchRow) => r.name + (r.note ? ` (${r.note})` : '');

export function table(report: BenchReport): string {
  judge(report);
  const head = ['figure', 'value', 'unit', 'baseline', 'ratio', 'budget', 'goal', 'verdict'];
  const body = report.rows.map((r) => {
    const q = ratio(r);
    return [
      label(r),
      fmt(r.value),
      r.unit,
      r.baseline ? `${fmt(r.baseline.value)} ${r.baseline.name}` : '',
      q === null ? '' : `${q.toFixed(2)}x`,
      fmtLimit(r.budget),
      fmtLimit(r.goal),
      verdict(r),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 1 || i === 4 ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line), '', summary(report)].join('\n');
}

/** One line: how many budgets were kept, and which were not. */
export function summary(report: BenchReport): string {
  const judged = report.rows.filter((r) => r.pass !== undefined);
  const failed = judged.filter((r) => !r.pass);
  const goals = report.rows.filter((r) => r.goal);
  return (
    `${judged.length - failed.length} of ${judged.length} budgets kept, ` +
    `${goals.filter((r) => r.goalMet).length} of ${goals.length} goals met` +
    (failed.length > 0 ? `; missed: ${failed.map((r) => r.name).join('; ')}` : '')
  );
}

/** The report as a Markdown table (the README's performance section is made from it), with the machine it ran on. */
export function markdown(report: BenchReport): string {
  judge(report);
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const rows = report.rows.map((r) => {
    const q = ratio(r);
    const base = r.baseline ? `${fmt(r.baseline.value)} ${cell(r.baseline.name)}` : '';
    const v = verdict(r);
    return `| ${cell(label(r))} | ${fmt(r.value)} ${cell(r.unit)} | ${base} | ${q === null ? '' : `${q.toFixed(2)} ×`} | ${cell(fmtLimit(r.budget))} | ${cell(fmtLimit(r.goal))} | ${r.pass === false ? `**${v}**` : v} |`;
  });
  return [
    `Measured ${report.startedAt.slice(0, 10)} with Node ${report.node} on ${report.cpus} CPUs (\`otlp-edge-sim bench\`).`,
    '',
    '| figure | value | baseline (same run) | ratio | budget | goal | verdict |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    summary(report) + '.',
    '',
  ].join('\n');
}

/** Prints the table to stderr-free stdout: the JSON line first (one line, easy to grep), then the table. */
export function print(report: BenchReport): void {
  judge(report);
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
