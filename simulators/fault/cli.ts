import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startBinary, type ChildService } from '../../runtime/process/child.js';
import { parseDuration } from '../../protocol/config/units.js';
import { freeLoopbackPort, scrapeMetric } from '../bench/util.js';
import { account, Acks, SeqBackend, startDevices, type Accounting } from './ledger.js';

const HELP = `otlp-edge-sim fault — faults against real processes, ending with an accounting by device seq

Usage: otlp-edge-sim fault <scenario> [options]

Scenarios:
  agent-kill9         kill -9 the agent at random moments under QoS 1 load, --repeats times (default 20),
                      restarting it on the same buffer each time
  aggregator-outage   stop the aggregator for --outage (default 10s) under load; the agent buffers, then
                      drains oldest first once it is back

Each run starts an aggregator exporting to a local OTLP/HTTP backend, an agent uplinking to it, and --devices
(default 20) MQTT devices publishing QoS 1 readings with a seq, --window (default 10) unacknowledged each. When the
scenario ends the devices stop, the agent and the aggregator drain, and the backend's readings are compared with
the devices' PUBACKs:

  acked        readings the devices were told are safe
  delivered    distinct readings that reached the backend
  duplicated   deliveries beyond the first (at least once: allowed, counted)
  dropped      readings the agent's buffer cap dropped, as it counted them
  lost         acknowledged readings never delivered — must be 0; the exit code is 1 otherwise

Options: --devices N, --window N, --repeats N, --outage D, --dir DIR (data and logs; default a temporary directory,
removed after a passing run), --json (one JSON line only).
`;

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const agentMain = here('../../agent/main.js');
const aggregatorMain = here('../../aggregator/main.js');

interface World {
  dir: string;
  backend: SeqBackend;
  ports: { grpc: number; api: number; mqtt: number; http: number };
  aggregator: ChildService | null;
  agent: ChildService | null;
  startAggregator(): Promise<void>;
  startAgent(): Promise<void>;
  log(msg: string): void;
}

async function world(dir: string, quiet: boolean): Promise<World> {
  const backend = new SeqBackend();
  await backend.start();
  const ports = {
    grpc: await freeLoopbackPort(),
    api: await freeLoopbackPort(),
    mqtt: await freeLoopbackPort(),
    http: await freeLoopbackPort(),
  };
  const w: World = {
    dir,
    backend,
    ports,
    aggregator: null,
    agent: null,
    startAggregator: async () => {
      w.aggregator = await startBinary(
        join(dir, 'aggregator'),
        'aggregator',
        aggregatorMain,
        {
          node: { id: 'fault-agg', data_dir: join(dir, 'aggregator', 'data') },
          grpc: { host: '127.0.0.1', port: ports.grpc },
          otlp_http: { enabled: false },
          api: { host: '127.0.0.1', port: ports.api },
          export: {
            protocol: 'otlp_http',
            endpoint: `http://127.0.0.1:${backend.port}`,
            batch: { max_delay: '100ms' },
          },
          log: { level: 'warn' },
        },
        `http://127.0.0.1:${ports.api}/readyz`,
        { logFile: join(dir, 'aggregator.log'), keepOutput: 20_000 },
      );
    },
    startAgent: async () => {
      w.agent = await startBinary(
        join(dir, 'agent'),
        'agent',
        agentMain,
        {
          agent: { id: 'fault-gw', data_dir: join(dir, 'agent', 'data') },
          mqtt: { broker: { tcp: { host: '127.0.0.1', port: ports.mqtt }, allow_anonymous: true } },
          uplink: { endpoints: [`127.0.0.1:${ports.grpc}`], token: '' },
          batch: { max_delay: '50ms' },
          http: { host: '127.0.0.1', port: ports.http },
          log: { level: 'warn' },
        },
        `http://127.0.0.1:${ports.http}/readyz`,
        { logFile: join(dir, 'agent.log'), keepOutput: 20_000 },
      );
    },
    log: (msg) => {
      if (!quiet) process.stderr.write(`${msg}\n`);
    },
  };
  return w;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function metrics(url: string): Promise<string> {
  return (await fetch(url).catch(() => null))?.text() ?? '';
}

/** Waits until the agent has delivered everything and the aggregator exported it. */
async function drained(w: World, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const agent = await metrics(`http://127.0.0.1:${w.ports.http}/metrics`);
    const agg = await metrics(`http://127.0.0.1:${w.ports.api}/metrics`);
    if (
      agent !== '' &&
      agg !== '' &&
      scrapeMetric(agent, 'otlp_edge_agent_uplink_backlog_batches') === 0 &&
      scrapeMetric(agg, 'otlp_edge_aggregator_export_queue_batches') === 0
    )
      return true;
    await sleep(200);
  }
  return false;
}

type Scenario = (w: World, o: { repeats: number; outageMs: number }) => Promise<void>;

const SCENARIOS: Record<string, Scenario> = {
  'agent-kill9': async (w, o) => {
    for (let i = 1; i <= o.repeats; i++) {
      await sleep(300 + Math.floor(Math.random() * 900));
      await w.agent!.kill9();
      w.log(`kill -9 of the agent ${i}/${o.repeats}`);
      await w.startAgent();
    }
    await sleep(1000);
  },
  'aggregator-outage': async (w, o) => {
    await sleep(1500);
    await w.aggregator!.kill9();
    w.log(`aggregator down for ${o.outageMs} ms`);
    await sleep(o.outageMs);
    await w.startAggregator();
    w.log('aggregator back');
    await sleep(1000);
  },
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
        outage: { type: 'string', default: '10s' },
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
  const scenario = SCENARIOS[positionals[0]];
  const devices = Number(v.devices);
  const window = Number(v.window);
  const repeats = Number(v.repeats);
  const outageMs = parseDuration(v.outage);
  const bad =
    scenario === undefined
      ? `unknown scenario '${positionals[0]}'; expected ${Object.keys(SCENARIOS).join(', ')}`
      : !(Number.isInteger(devices) && devices > 0)
        ? `--devices: expected a positive integer, got '${v.devices}'`
        : !(Number.isInteger(window) && window > 0)
          ? `--window: expected a positive integer, got '${v.window}'`
          : !(Number.isInteger(repeats) && repeats > 0)
            ? `--repeats: expected a positive integer, got '${v.repeats}'`
            : outageMs === null
              ? `--outage: expected a duration like 10s, got '${v.outage}'`
              : null;
  if (bad !== null) {
    process.stderr.write(`otlp-edge-sim fault: ${bad}\n`);
    return 2;
  }
  const dir = v.dir ?? mkdtempSync(join(tmpdir(), 'otlp-edge-fault-'));
  const w = await world(dir, v.json);
  const acks = new Acks();
  let fleet: { stop(): Promise<void> } | null = null;
  let result: (Accounting & { scenario: string; drained: boolean; seconds: number }) | null = null;
  const t0 = Date.now();
  try {
    await w.startAggregator();
    await w.startAgent();
    fleet = startDevices(`mqtt://127.0.0.1:${w.ports.mqtt}`, devices, window, acks);
    w.log(`${positionals[0]}: ${devices} devices publishing QoS 1 to the agent; data and logs in ${dir}`);
    await scenario!(w, { repeats, outageMs: outageMs! });
    await fleet.stop();
    fleet = null;
    const done = await drained(w, 60_000);
    const agentMetrics = await metrics(`http://127.0.0.1:${w.ports.http}/metrics`);
    // One reading is a temperature point and its seq gauge.
    const dropped = scrapeMetric(agentMetrics, 'otlp_edge_agent_buffer_dropped_points_total') / 2;
    result = {
      scenario: positionals[0],
      drained: done,
      seconds: (Date.now() - t0) / 1000,
      ...account(acks, w.backend, dropped),
    };
  } finally {
    await fleet?.stop();
    await w.agent?.stop();
    await w.aggregator?.stop();
    await w.backend.close();
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
  if (!v.json) {
    const r = result;
    process.stderr.write(
      `acked ${r.acked} | delivered ${r.delivered} | duplicated ${r.duplicated} | dropped (counted) ${r.droppedCounted} | lost ${r.lost}${r.lost > 0 ? ` (e.g. ${r.lostExamples.join(', ')})` : ''}${r.drained ? '' : ' | NOT DRAINED within 60 s'}\n`,
    );
  }
  const ok = result.lost === 0 && result.drained && result.acked > 0;
  if (ok && v.dir === undefined) rmSync(dir, { recursive: true, force: true });
  return ok ? 0 : 1;
}
