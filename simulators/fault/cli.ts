import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../../protocol/config/units.js';
import { scrapeMetric } from '../bench/util.js';
import { account, Acks, startDevices, type Accounting } from './ledger.js';
import { SCENARIOS } from './scenarios.js';
import { World } from './world.js';

const HELP = `otlp-edge-sim fault — faults against real processes, ending with an accounting by device seq

Usage: otlp-edge-sim fault <scenario> [options]

Scenarios:
${Object.entries(SCENARIOS)
  .map(([name, s]) => `  ${name.padEnd(18)}  ${s.about}`)
  .join('\n')}

Each run starts aggregator nodes exporting to a local OTLP/HTTP backend, an agent uplinking to them, and
--devices (default 20) MQTT devices publishing QoS 1 readings with a seq, --window (default 10) unacknowledged
each. When the scenario ends the devices stop, the agent and the nodes drain, and the backend's readings are
compared with the devices' PUBACKs:

  acked        readings the devices were told are safe
  delivered    distinct readings that reached the backend
  duplicated   deliveries beyond the first (at least once: allowed, counted)
  dropped      readings the agent's buffer cap dropped, as it counted them
  lost         acknowledged readings never delivered: 0, or past the buffer cap exactly the dropped ones. The exit
               code is 1 otherwise, or when nothing drained within 90 s. Past the cap the oldest go first, except
               batches being sent at that moment (delivered between dropped ones: reported as outOfOrderDrops).

Options: --devices N, --window N, --repeats N (agent-kill9; default 20), --outage D (default 5s),
--dir DIR (data and logs; default a temporary directory, removed after a passing run), --json (the JSON line only).
`;

export type FaultResult = Accounting & {
  scenario: string;
  drained: boolean;
  seconds: number;
  passed: boolean;
  /** What the scenario found wrong besides the accounting (e.g. a fault that did not take). */
  problems: string[];
};

export async function runFaultCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        devices: { type: 'string', default: '20' },
        window: { type: 'string', default: '10' },
        repeats: { type: 'string', default: '20' },
        outage: { type: 'string', default: '5s' },
        dir: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    process.stderr.write(`otlp-edge-sim fault: ${(e as Error).message}\n`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  if (v.help || positionals.length === 0) {
    process.stdout.write(HELP);
    return v.help ? 0 : 2;
  }
  const name = positionals[0];
  const scenario = SCENARIOS[name];
  const devices = Number(v.devices);
  const window = Number(v.window);
  const repeats = Number(v.repeats);
  const outageMs = parseDuration(v.outage);
  const positive = (n: number) => Number.isInteger(n) && n > 0;
  const bad =
    scenario === undefined
      ? `unknown scenario '${name}'; expected ${Object.keys(SCENARIOS).join(', ')}`
      : !positive(devices)
        ? `--devices: expected a positive integer, got '${v.devices}'`
        : !positive(window)
          ? `--window: expected a positive integer, got '${v.window}'`
          : !positive(repeats)
            ? `--repeats: expected a positive integer, got '${v.repeats}'`
            : outageMs === null
              ? `--outage: expected a duration like 5s, got '${v.outage}'`
              : null;
  if (bad !== null) {
    process.stderr.write(`otlp-edge-sim fault: ${bad}\n`);
    return 2;
  }
  const dir = v.dir ?? mkdtempSync(join(tmpdir(), 'otlp-edge-fault-'));
  const w = new World(dir, { ...scenario.world, quiet: v.json });
  const acks = new Acks();
  let fleet: { stop(): Promise<void> } | null = null;
  let progress: NodeJS.Timeout | undefined;
  let result: FaultResult;
  const t0 = Date.now();
  // Ctrl-C ends the scenario early; the accounting still runs on what was done.
  let interrupted = false;
  const onSignal = () => (interrupted = true);
  process.once('SIGINT', onSignal);
  try {
    await w.init();
    if (scenario.setup) await scenario.setup(w);
    else {
      for (let i = 0; i < scenario.world.nodes; i++) await w.startAggregator(i);
      await w.startAgent();
    }
    fleet = startDevices(w.mqttUrl, devices, window, acks);
    w.log(`${name}: ${devices} devices publishing QoS 1 to the agent; data and logs in ${dir}`);
    // A live line every 5 s: elapsed, acknowledged readings and their rate, the agent's backlog, delivered so far.
    let last = { at: Date.now(), acked: 0 };
    progress = setInterval(() => {
      void w.metrics(w.agentMetricsUrl()).then((m) => {
        const now = Date.now();
        const acked = acks.total;
        const rate = ((acked - last.acked) * 1000) / Math.max(1, now - last.at);
        last = { at: now, acked };
        const backlog =
          m === '' ? 'agent down' : `${scrapeMetric(m, 'otlp_edge_agent_uplink_backlog_batches')} batches`;
        w.log(
          `${Math.round((now - t0) / 1000)}s | acked ${acked} (${Math.round(rate)}/s) | agent backlog ${backlog} | delivered ${w.backend.distinct}`,
        );
      });
    }, 5000);
    let watch: NodeJS.Timeout | undefined;
    await Promise.race([
      scenario.run(w, { repeats, outageMs: outageMs!, stopDevices: () => fleet?.stop() ?? Promise.resolve() }),
      new Promise<void>((resolve) => (watch = setInterval(() => interrupted && resolve(), 100))),
    ]);
    clearInterval(watch);
    clearInterval(progress);
    await fleet.stop();
    fleet = null;
    // Whatever the scenario left down comes back before the drain.
    for (let i = 0; i < w.aggregators.length; i++) if (w.aggregators[i] === null) await w.startAggregator(i);
    const drained = await w.drained(90_000);
    // One reading is a temperature point and its seq gauge.
    const dropped =
      scrapeMetric(await w.metrics(w.agentMetricsUrl()), 'otlp_edge_agent_buffer_dropped_points_total') / 2;
    const a = account(acks, w.backend, dropped);
    const passed =
      drained &&
      a.acked > 0 &&
      w.problems.length === 0 &&
      (scenario.promise === 'nothing-lost' ? a.lost === 0 : a.lost === a.droppedCounted);
    result = { scenario: name, drained, seconds: (Date.now() - t0) / 1000, passed, problems: w.problems, ...a };
  } finally {
    process.off('SIGINT', onSignal);
    clearInterval(progress);
    await fleet?.stop();
    await w.close();
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
  if (!v.json) {
    const r = result;
    process.stderr.write(
      `${r.passed ? 'PASS' : 'FAIL'} ${name}: acked ${r.acked} | delivered ${r.delivered} | duplicated ${r.duplicated} | dropped (counted) ${r.droppedCounted} | lost ${r.lost}${r.lost > 0 ? ` (e.g. ${r.lostExamples.slice(0, 3).join(', ')})` : ''}${r.outOfOrderDrops > 0 ? ` | ${r.outOfOrderDrops} delivered between lost ones` : ''}${r.drained ? '' : ' | NOT DRAINED within 90 s'}${r.problems.map((p) => ` | ${p}`).join('')}\n`,
    );
  }
  if (result.passed && v.dir === undefined) rmSync(dir, { recursive: true, force: true });
  return result.passed ? 0 : 1;
}
