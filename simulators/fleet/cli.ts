import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseDuration } from '../../protocol/config/units.js';
import { Fleet, FleetOptionsError, resolveFleetOptions, type FleetOptions, type FleetSummary } from './fleet.js';
import { ProgressDisplay } from './progress.js';

/**
 * `otlp-edge-sim fleet`: flags → FleetOptions, the live status line, Ctrl-C, and the summary at the end.
 * Every bad flag is reported (all of them, one line each, naming the flag, what it expects and what it got) with
 * exit code 2, before any connection is made.
 */

export const FLEET_HELP = `otlp-edge-sim fleet — simulated IoT devices publishing readings over MQTT

Usage: otlp-edge-sim fleet [options]

Connection
  --url URL                   broker: mqtt://, mqtts://, ws://, wss:// (default mqtt://127.0.0.1:1883)
  --devices N                 devices, one MQTT connection each (default 1)
  --prefix P                  device id prefix; ids are P + zero-padded index (default sim-)
  --first-index N             index of the first device, to split a fleet over processes (default 0)
  --password P                password of every device; the username is the device id
                              (default: $OTLP_EDGE_SIM_PASSWORD, else none)
  --mqtt 4|5                  MQTT version; 5 adds the content-type property (default 4)
  --ca FILE                   CA certificate (PEM) to verify an mqtts:// or wss:// broker
  --insecure                  do not verify the broker's certificate
  --connect-concurrency N     connection attempts at once while connecting (default 200)
  --connect-rate R            new connections per second while connecting, a ramp (default: no limit)
  --client mqtt.js|lean       MQTT.js (default; TLS, WebSocket, MQTT 5, QoS 2), or a lean MQTT 3.1.1
                              client over mqtt:// at QoS 0/1 that keeps 10,000 devices in one process

Load
  --rate R                    readings per second, whole fleet (default 1 per device)
  --readings-per-message N    readings per message; > 1 sends an array (default 1)
  --duration D                stop D seconds after the fleet has connected (30, 30s, 2m;
                              default: run until Ctrl-C)
  --count N                   stop after N messages per device
  --qos 0|1|2                 (default 1)
  --max-in-flight N           unacked messages per device before it waits (default 20)
  --events-rate P             probability per reading of an event as well (default 0.001)
  --seed N                    seed of the simulated values (default 1)

Faults
  --storm-every D             every D (30s, 2m), cut the connections of --storm-fraction of the connected
                              devices at once, as a network fault would; they reconnect within ~1 s
  --storm-fraction F          share of connected devices a storm cuts, 0 < F <= 1 (default 1)

Payloads
  --encoding json|cbor        (default json)
  --shape flat|explicit       flat fields, or { metrics, attributes } (default flat)
  --ts ms|rfc3339             epoch milliseconds or RFC 3339 text (default ms)
  --telemetry-topic T         (default devices/{deviceId}/telemetry)
  --events-topic T            (default devices/{deviceId}/events)
  --errors-topic T            (default devices/{deviceId}/errors)
  --watch-errors              subscribe to each device's errors topic and count rejections

Output
  --quiet                     no live status line
  --json                      print the summary as one JSON line instead of a table
  --help                      this text

A live status line goes to stderr; the summary of what was sent and acknowledged to stdout at the end (also after
Ctrl-C). Exit code 0, 1 when some device never connected, 2 for bad flags.
`;

export interface FleetCommandIO {
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Ends the run like Ctrl-C (for callers that embed the command). */
  signal?: AbortSignal;
  env?: Record<string, string | undefined>;
}

const FLAGS = {
  url: { type: 'string' },
  devices: { type: 'string' },
  prefix: { type: 'string' },
  'first-index': { type: 'string' },
  password: { type: 'string' },
  mqtt: { type: 'string' },
  ca: { type: 'string' },
  insecure: { type: 'boolean' },
  'connect-concurrency': { type: 'string' },
  'connect-rate': { type: 'string' },
  client: { type: 'string' },
  'storm-every': { type: 'string' },
  'storm-fraction': { type: 'string' },
  rate: { type: 'string' },
  'readings-per-message': { type: 'string' },
  duration: { type: 'string' },
  count: { type: 'string' },
  qos: { type: 'string' },
  'max-in-flight': { type: 'string' },
  'events-rate': { type: 'string' },
  seed: { type: 'string' },
  encoding: { type: 'string' },
  shape: { type: 'string' },
  ts: { type: 'string' },
  'telemetry-topic': { type: 'string' },
  'events-topic': { type: 'string' },
  'errors-topic': { type: 'string' },
  'watch-errors': { type: 'boolean' },
  quiet: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Fleet option → the flag that sets it, for messages in the user's terms. */
const FLAG_OF: Record<string, string> = {
  url: 'url',
  devices: 'devices',
  prefix: 'prefix',
  firstIndex: 'first-index',
  protocolVersion: 'mqtt',
  rate: 'rate',
  readingsPerMessage: 'readings-per-message',
  duration: 'duration',
  count: 'count',
  qos: 'qos',
  maxInFlight: 'max-in-flight',
  encoding: 'encoding',
  shape: 'shape',
  tsFormat: 'ts',
  eventRate: 'events-rate',
  connectConcurrency: 'connect-concurrency',
  connectRate: 'connect-rate',
  client: 'client',
  seed: 'seed',
};

class UsageError extends Error {}

/** A decimal number, or NaN (Number() would read '' as 0 and '0x10' as 16). */
function num(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  return /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(raw) ? Number(raw) : NaN;
}

/** Flags → fleet options; throws UsageError listing every bad flag. */
export function fleetOptionsFromArgs(
  argv: string[],
  env: Record<string, string | undefined> = process.env,
): { options: FleetOptions; quiet: boolean; json: boolean; storm: Storm | null } {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: FLAGS, strict: true, allowPositionals: false });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values;
  const problems: string[] = [];
  let durationS: number | undefined;
  if (v.duration !== undefined) {
    durationS = durationFlag(v.duration);
    if (!(durationS > 0))
      problems.push(`--duration: expected seconds or a duration like 30s or 2m, got '${v.duration}'`);
  }
  let storm: Storm | null = null;
  if (v['storm-every'] !== undefined || v['storm-fraction'] !== undefined) {
    const every = durationFlag(v['storm-every'] ?? '');
    const fraction = num(v['storm-fraction']) ?? 1;
    if (!(every > 0))
      problems.push(`--storm-every: expected a duration like 30s or 2m, got '${v['storm-every'] ?? ''}'`);
    if (!(fraction > 0 && fraction <= 1))
      problems.push(`--storm-fraction: expected a share 0 < F <= 1, got '${v['storm-fraction']}'`);
    storm = { everyMs: every * 1000, fraction };
  }
  let ca: Buffer | undefined;
  if (v.ca !== undefined) {
    try {
      ca = readFileSync(v.ca);
    } catch (e) {
      problems.push(
        `--ca: expected a readable PEM file, got '${v.ca}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      );
    }
  }
  const topics = { telemetry: v['telemetry-topic'], events: v['events-topic'], errors: v['errors-topic'] };
  const options: FleetOptions = {
    url: v.url,
    devices: num(v.devices),
    prefix: v.prefix,
    firstIndex: num(v['first-index']),
    password: v.password ?? env.OTLP_EDGE_SIM_PASSWORD,
    protocolVersion: num(v.mqtt) as 4 | 5 | undefined,
    ca,
    rejectUnauthorized: v.insecure ? false : undefined,
    connectConcurrency: num(v['connect-concurrency']),
    connectRate: num(v['connect-rate']),
    client: v.client as FleetOptions['client'],
    rate: num(v.rate),
    readingsPerMessage: num(v['readings-per-message']),
    duration: problems.some((p) => p.startsWith('--duration')) ? undefined : durationS,
    count: num(v.count),
    qos: num(v.qos) as 0 | 1 | 2 | undefined,
    maxInFlight: num(v['max-in-flight']),
    eventRate: num(v['events-rate']),
    seed: num(v.seed),
    encoding: v.encoding as FleetOptions['encoding'],
    shape: v.shape as FleetOptions['shape'],
    tsFormat: v.ts as FleetOptions['tsFormat'],
    topics,
    watchErrors: v['watch-errors'],
  };
  try {
    resolveFleetOptions(options);
  } catch (e) {
    if (!(e instanceof FleetOptionsError)) throw e;
    for (const p of e.problems) {
      if (p.option === 'topics') {
        problems.push(String(p.got));
        continue;
      }
      const flag = FLAG_OF[p.option] ?? p.option;
      const raw = (v as Record<string, unknown>)[flag] ?? p.got;
      problems.push(`--${flag}: expected ${p.expected}, got '${String(raw)}'`);
    }
  }
  if (problems.length > 0) throw new UsageError(problems.join('\n'));
  return { options, quiet: v.quiet === true, json: v.json === true, storm };
}

/** Reconnect storms on a period (--storm-every). */
interface Storm {
  everyMs: number;
  fraction: number;
}

/** Seconds from '30', '30s' or '2m'; NaN when it is neither. */
function durationFlag(raw: string): number {
  const plain = num(raw);
  if (plain !== undefined && !Number.isNaN(plain)) return plain;
  const ms = parseDuration(raw);
  return ms !== null ? ms / 1000 : NaN;
}

/** Runs `otlp-edge-sim fleet` with `argv` (the arguments after `fleet`); resolves with the exit code. */
export async function runFleetCommand(argv: string[], io: FleetCommandIO = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  if (argv.includes('--help') || argv.includes('-h')) {
    stdout.write(FLEET_HELP);
    return 0;
  }
  let parsed;
  try {
    parsed = fleetOptionsFromArgs(argv, io.env ?? process.env);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    stderr.write(
      e.message
        .split('\n')
        .map((line) => `otlp-edge-sim fleet: ${line}\n`)
        .join(''),
    );
    return 2;
  }
  const fleet = new Fleet(parsed.options);
  const progress = new ProgressDisplay(fleet, {
    stream: stderr,
    mode: parsed.quiet ? 'off' : undefined,
    acks: fleet.options.qos > 0,
  });

  let interrupt: () => void = () => undefined;
  const interrupted = new Promise<void>((resolve) => (interrupt = resolve));
  const forceExit = () => process.exit(130);
  const onSigint = () => {
    interrupt();
    process.once('SIGINT', forceExit); // a second Ctrl-C does not wait for the drain
  };
  process.once('SIGINT', onSigint);
  io.signal?.addEventListener('abort', interrupt, { once: true });
  let storms = 0;
  const stormTimer = parsed.storm
    ? setInterval(() => {
        const cut = fleet.storm(parsed.storm!.fraction);
        storms++;
        stderr.write(`otlp-edge-sim fleet: storm ${storms}: cut ${cut} connections\n`);
      }, parsed.storm.everyMs)
    : null;
  try {
    progress.start();
    await Promise.race([fleet.start(), interrupted]);
    await Promise.race([fleet.finished, interrupted]);
    if (stormTimer) clearInterval(stormTimer);
    progress.stop(); // its last line shows the fleet as it ends sending, before the devices disconnect
    const summary = await fleet.stop();
    stdout.write(parsed.json ? `${JSON.stringify(summaryJson(summary))}\n` : summaryTable(summary, fleet));
    if (summary.neverConnected > 0) {
      stderr.write(
        `otlp-edge-sim fleet: ${summary.neverConnected} of ${summary.devices} devices never connected to ${fleet.options.url}${summary.lastError ? `: ${summary.lastError}` : ''}\n`,
      );
      return 1;
    }
    return 0;
  } finally {
    if (stormTimer) clearInterval(stormTimer);
    progress.stop();
    process.off('SIGINT', onSigint);
    process.off('SIGINT', forceExit);
    io.signal?.removeEventListener('abort', interrupt);
  }
}

/** The summary without its per-device map, as JSON can carry it. */
export function summaryJson(s: FleetSummary): Omit<FleetSummary, 'perDevice'> {
  const { perDevice: _omit, ...rest } = s;
  return rest;
}

const n = (v: number): string => Math.round(v).toLocaleString('en-US');

export function summaryTable(s: FleetSummary, fleet?: Fleet): string {
  const o = fleet?.options;
  const rows: [string, string][] = [
    [
      'run',
      `${(s.elapsedMs / 1000).toFixed(1)} s, QoS ${s.qos}${o ? `, ${o.encoding}/${o.shape}, ts ${o.tsFormat}, MQTT ${o.protocolVersion === 5 ? '5' : '3.1.1'}` : ''}`,
    ],
    [
      'devices',
      `${n(s.devices)} (${n(s.connected)} connected when sending ended, ${n(s.neverConnected)} never connected, ${n(s.reconnects)} reconnections)`,
    ],
    [
      'messages',
      s.qos === 0 ? `sent ${n(s.sent)}` : `sent ${n(s.sent)}, acked ${n(s.acked)}, unconfirmed ${n(s.unconfirmed)}`,
    ],
    [
      'readings',
      s.qos === 0 ? `sent ${n(s.readings.sent)}` : `sent ${n(s.readings.sent)}, acked ${n(s.readings.acked)}`,
    ],
    ['events', s.qos === 0 ? `sent ${n(s.events.sent)}` : `sent ${n(s.events.sent)}, acked ${n(s.events.acked)}`],
    ['rate', `${n(s.rate.achieved)} readings/s (asked ${n(s.rate.target)})`],
  ];
  const ms = (v: number) => (v < 10 ? v.toFixed(1) : n(v));
  if (s.qos > 0)
    rows.push([
      'ack latency',
      `p50 ${ms(s.ackLatencyMs.p50)} ms, p99 ${ms(s.ackLatencyMs.p99)} ms, max ${ms(s.ackLatencyMs.max)} ms`,
    ]);
  rows.push([
    'behind schedule',
    `${n(s.behind)} turns delayed by the broker (unacked or disconnected)${s.backlog > 0 ? `; the fleet process itself was ${n(s.backlog)} turns behind (short of CPU)` : ''}`,
  ]);
  rows.push(['errors', `${n(s.errors)}${s.lastError ? ` (last: ${s.lastError})` : ''}`]);
  rows.push([
    'rejections',
    `${n(s.rejections)}${s.lastRejections.length > 0 ? ` (last: ${s.lastRejections[s.lastRejections.length - 1].message})` : ''}`,
  ]);
  const w = Math.max(...rows.map(([k]) => k.length));
  return `${rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n')}\n`;
}
