import { writeFileSync } from 'node:fs';
import { benchAgent } from './agent.js';
import { benchAggregator } from './aggregator-report.js';
import { benchCluster } from './cluster.js';
import { benchField } from './field.js';
import { benchProtocol } from './protocol.js';
import { judge, markdown, newReport, type BenchReport } from './report.js';
import { benchUplink } from './uplink.js';

/**
 * `otlp-edge-sim bench` with no sub-argument: every benchmark in one run — protocol hot paths, agent ingest (beside
 * a bare aedes and a mosquitto relay), the uplink at field load and at a burst (bytes per point beside OTLP + gzip,
 * device → aggregator latency), aggregator ingest per node, and the 3-node cost — as one report whose rows are
 * prefixed by the benchmark they come from. `quick` shortens every window to finish in about a minute.
 */
export interface BenchAllOptions {
  quick: boolean;
  /** Also write the report as JSON / as a Markdown table to these files. */
  json?: string;
  markdown?: string;
  /** Called after each benchmark (progress). */
  onPart?: (name: string, seconds: number) => void;
}

export async function benchAll(o: BenchAllOptions, stopped: () => boolean = () => false): Promise<BenchReport> {
  const q = o.quick;
  const parts: [string, () => Promise<BenchReport>][] = [
    ['protocol', () => benchProtocol(q)],
    ['agent', () => benchAgent(q ? { devices: 100, seconds: 1, warmup: 1 } : {})],
    ['field', () => benchField(q ? { sizes: [1000], settleSeconds: 2, latencySeconds: 4 } : {})],
    [
      'uplink',
      () =>
        benchUplink(
          q ? { devices: 300, seconds: 4, warmup: 1, burstRate: 5000, burstSeconds: 2, outageSeconds: 0 } : {},
        ),
    ],
    ['aggregator', () => benchAggregator(q ? { seconds: 1, warmupSeconds: 1, skipOtlp: true, recorded: 100 } : {})],
    [
      'cluster',
      () =>
        // Two turns each (not the command's three) keep the whole run under 15 minutes here.
        benchCluster(
          q ? { gateways: 2, devices: 300, seconds: 1, warmupSeconds: 1, repeats: 1, recorded: 100 } : { repeats: 2 },
        ),
    ],
  ];
  const report = newReport(q ? 'all (quick)' : 'all');
  for (const [name, run] of parts) {
    if (stopped()) break;
    const t0 = Date.now();
    const part = await run();
    for (const row of part.rows) report.rows.push({ ...row, name: `${name}: ${row.name}` });
    o.onPart?.(name, (Date.now() - t0) / 1000);
  }
  judge(report); // the files carry the verdicts as stdout does
  if (o.json) writeFileSync(o.json, JSON.stringify(report, null, 2) + '\n');
  if (o.markdown) writeFileSync(o.markdown, markdown(report));
  return report;
}
