import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { ZstdCompressor } from '../../protocol/compression.js';
import { isValidAddress } from '../../protocol/ring/ring.js';
import { isValidId } from '../../protocol/ids.js';
import { parseDuration } from '../../protocol/config/units.js';
import { POINTS_PER_READING, SimulatedGateway, Uplinks, type GatewayCounts } from './gateway.js';

const HELP = `otlp-edge-sim gateways — simulated agents loading an aggregator cluster over the uplink

Usage: otlp-edge-sim gateways --endpoints HOST:PORT[,HOST:PORT…] [options]

Each gateway is an agent as the aggregators see it: its own agent id, token and buffer id, a seq per stored batch,
the low-water mark of what is acknowledged, and devices whose readings (ts, seq, five metrics) go out as the agent
encodes them — OTLP, zstd, one batch per owner once the ring is learned, Send retried with the same seq.

  --endpoints LIST        seed aggregators (the ring is learned from them)
  --gateways N            simulated gateways (default: the lines of --tokens, else 10)
  --devices N             devices per gateway (default 100)
  --rate R                readings per second per device (default 1)
  --interval D            how often each gateway commits a batch (default 1s; the agent's batch.max_delay)
  --duration D            stop after D (30s, 2m; default: until Ctrl-C)
  --tokens FILE           agent tokens, lines "AGENT_ID TOKEN" (the aggregator's auth.agent_tokens_file): gateway i
                          is the agent on line i
  --write-tokens FILE     make N agents (ids from --prefix) with fresh tokens, write them to FILE for the
                          aggregators' auth.agent_tokens_file, and use them
  --prefix P              agent id prefix without --tokens (default sim-gw-)
  --max-in-flight N       unanswered batches per gateway (default 4)
  --max-queued N          batches waiting per gateway before the oldest are dropped and counted (default 100)
  --own-connections       one HTTP/2 connection per gateway and aggregator, as real agents have (default: the
                          gateways share one per aggregator, far lighter for the simulator)
  --tls --ca FILE         TLS to the aggregators, verified against FILE (default: the system's roots)
  --json FILE             write the final accounting as JSON to FILE
  --drain D               at the end, how long to wait for what was made to be acknowledged (default 10s)
  --quiet                 no progress line

A progress line every 5 s (elapsed, readings/s acknowledged, backlog, retries); Ctrl-C stops making readings, waits
up to --drain for what was made to be acknowledged, and prints the accounting: made, acknowledged, retried, rejected,
dropped, per device.
`;

export interface GatewaysSummary {
  gateways: number;
  devices: number;
  seconds: number;
  readings: number;
  acked: number;
  ackedPerSecond: number;
  pointsPerSecond: number;
  batches: number;
  retries: number;
  rejected: number;
  dropped: number;
  /** Readings made and not acknowledged at the end (neither dropped nor rejected). */
  unacked: number;
  /** Per device id: readings acknowledged. */
  perDevice?: Record<string, number>;
}

function tokensFrom(file: string): { id: string; token: string }[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l, i) => {
      const [id, token] = l.split(/\s+/);
      if (!isValidId(id ?? '') || !token) throw new Error(`${file}:${i + 1}: expected "AGENT_ID TOKEN"`);
      return { id, token };
    });
}

export async function runGatewaysCommand(argv: string[], io = process): Promise<number> {
  let v;
  try {
    ({ values: v } = parseArgs({
      args: argv,
      options: {
        endpoints: { type: 'string', default: '' },
        gateways: { type: 'string' },
        devices: { type: 'string', default: '100' },
        rate: { type: 'string', default: '1' },
        interval: { type: 'string', default: '1s' },
        duration: { type: 'string' },
        tokens: { type: 'string' },
        'write-tokens': { type: 'string' },
        prefix: { type: 'string', default: 'sim-gw-' },
        'max-in-flight': { type: 'string', default: '4' },
        'max-queued': { type: 'string', default: '100' },
        'own-connections': { type: 'boolean', default: false },
        tls: { type: 'boolean', default: false },
        ca: { type: 'string' },
        json: { type: 'string' },
        drain: { type: 'string', default: '10s' },
        quiet: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (e) {
    io.stderr.write(`otlp-edge-sim gateways: ${(e as Error).message}\n`);
    return 2;
  }
  if (v.help) {
    io.stdout.write(HELP);
    return 0;
  }
  const fail = (msg: string) => {
    io.stderr.write(`otlp-edge-sim gateways: ${msg}\n`);
    return 2;
  };
  const seeds = v.endpoints.split(',').filter((s) => s !== '');
  if (seeds.length === 0) return fail('--endpoints: at least one aggregator HOST:PORT is required');
  const badSeed = seeds.find((s) => !isValidAddress(s));
  if (badSeed) return fail(`--endpoints: expected HOST:PORT, got '${badSeed}'`);
  const int = (flag: string, s: string, min: number) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${flag}: expected an integer ≥ ${min}, got '${s}'`);
    return n;
  };
  let agents: { id: string; token: string }[];
  let devices, maxInFlight, maxQueued, rate, intervalMs, drainMs, durationMs: number | null;
  try {
    devices = int('devices', v.devices, 1);
    maxInFlight = int('max-in-flight', v['max-in-flight'], 1);
    maxQueued = int('max-queued', v['max-queued'], 1);
    rate = Number(v.rate);
    if (!(rate > 0)) throw new Error(`--rate: expected readings per second per device above 0, got '${v.rate}'`);
    const iv = parseDuration(v.interval);
    if (iv === null || iv < 10)
      throw new Error(`--interval: expected a duration of at least 10ms, got '${v.interval}'`);
    intervalMs = iv;
    const dr = parseDuration(v.drain);
    if (dr === null) throw new Error(`--drain: expected a duration like 10s, got '${v.drain}'`);
    drainMs = dr;
    durationMs =
      v.duration === undefined ? null : parseDuration(/^\d+$/.test(v.duration) ? `${v.duration}s` : v.duration);
    if (v.duration !== undefined && durationMs === null)
      throw new Error(`--duration: expected a duration like 30s or 2m, got '${v.duration}'`);
    if (v.tokens) {
      agents = tokensFrom(v.tokens);
      if (v.gateways !== undefined) agents = agents.slice(0, int('gateways', v.gateways, 1));
      if (agents.length === 0) throw new Error(`--tokens: ${v.tokens} lists no agent`);
    } else {
      const n = int('gateways', v.gateways ?? '10', 1);
      if (!isValidId(`${v.prefix}0`)) throw new Error(`--prefix: '${v.prefix}' does not make valid agent ids`);
      agents = Array.from({ length: n }, (_, i) => ({
        id: `${v.prefix}${i}`,
        token: v['write-tokens'] ? randomBytes(24).toString('hex') : '',
      }));
      if (v['write-tokens'])
        writeFileSync(v['write-tokens'], agents.map((a) => `${a.id} ${a.token}`).join('\n') + '\n', { mode: 0o600 });
    }
  } catch (e) {
    return fail((e as Error).message);
  }
  const credentials = v.tls
    ? grpc.credentials.createSsl(v.ca ? readFileSync(v.ca) : null)
    : grpc.credentials.createInsecure();
  const uplinks = new Uplinks(seeds, credentials, v['own-connections'], agents[0].token);
  await uplinks.refresh();
  if (uplinks.ringError !== null)
    io.stderr.write(
      `otlp-edge-sim gateways: the ring could not be learned yet (${uplinks.ringError}); sending to the seeds\n`,
    );
  const zstd = new ZstdCompressor(3);
  const gateways = agents.map(
    (a) =>
      new SimulatedGateway(
        { agentId: a.id, token: a.token, devices, rate, intervalMs, maxInFlight, maxQueued },
        uplinks,
        zstd,
      ),
  );
  const t0 = Date.now();
  // Commits spread over one interval, as independent gateways' clocks would be.
  gateways.forEach((g, i) => g.start(Math.floor((i * intervalMs) / gateways.length)));
  const total = (): GatewayCounts => {
    const t: GatewayCounts = {
      readings: 0,
      batches: 0,
      ackedReadings: 0,
      retries: 0,
      rejected: 0,
      dropped: 0,
      backlog: 0,
    };
    for (const g of gateways) for (const k of Object.keys(t) as (keyof GatewayCounts)[]) t[k] += g.counts[k];
    return t;
  };
  let prev = { at: t0, acked: 0 };
  const progress = v.quiet
    ? null
    : setInterval(() => {
        const t = total();
        const now = Date.now();
        const perSecond = ((t.ackedReadings - prev.acked) * 1000) / Math.max(1, now - prev.at);
        prev = { at: now, acked: t.ackedReadings };
        io.stderr.write(
          `${Math.round((now - t0) / 1000)}s | gateways ${gateways.length} × ${devices} devices | acked ${t.ackedReadings} readings (${Math.round(perSecond)}/s) | backlog ${t.backlog} batches | retries ${t.retries} | rejected ${t.rejected} | dropped ${t.dropped} | ring v${uplinks.version}\n`,
        );
      }, 5000);
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
    if (durationMs !== null) setTimeout(done, durationMs).unref();
  });
  if (progress) clearInterval(progress);
  const seconds = (Date.now() - t0) / 1000;
  await Promise.all(gateways.map((g) => g.stop(drainMs)));
  uplinks.close();
  const t = total();
  const perDevice: Record<string, number> = {};
  for (const g of gateways) g.acked.forEach((n, d) => (perDevice[g.deviceId(d)] = n));
  const summary: GatewaysSummary = {
    gateways: gateways.length,
    devices: gateways.length * devices,
    seconds,
    readings: t.readings,
    acked: t.ackedReadings,
    ackedPerSecond: t.ackedReadings / seconds,
    pointsPerSecond: (t.ackedReadings * POINTS_PER_READING) / seconds,
    batches: t.batches,
    retries: t.retries,
    rejected: t.rejected,
    dropped: t.dropped,
    unacked: t.readings - t.ackedReadings - t.dropped,
  };
  io.stdout.write(`${JSON.stringify(summary)}\n`);
  if (v.json) writeFileSync(v.json, JSON.stringify({ ...summary, perDevice }, null, 2));
  return summary.unacked === 0 && summary.rejected === 0 ? 0 : 1;
}
