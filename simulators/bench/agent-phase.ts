/**
 * One phase of `bench agent` (agent.ts): a fleet against one target (the agent, bare aedes, a mosquitto relay) —
 * connect, warm up, measure a window, stop — and what the target took, used and held meanwhile.
 */
import { performance } from 'node:perf_hooks';
import { connect as mqttConnect } from 'mqtt';
import { FleetThreads } from './fleet-threads.js';
import { fleetThreads, fmtRate, type PhaseResult } from './agent-rows.js';
import { cpuSecondsOf, rssOf, type Child } from './processes.js';
import type { AgentBenchOptions } from './agent.js';

/** 15 s from the fleet's start after which the window opens with whichever devices are connected by then. */
const CONNECT_BUDGET_MS = 15_000;
/** 3 s a stopping fleet waits for outstanding acks. */
const DRAIN_MS = 3000;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A broker under test, and how many readings it has taken (stored, counted or relayed) so far. */
export interface Target {
  readonly name: string;
  readonly url: string;
  taken(): Promise<number>;
  /** Its process, for RSS and CPU time from /proc. */
  readonly pid: number | undefined;
  /** MQTT version the fleet speaks to it; default 4 (3.1.1). MQTT 5 adds a content type to every message. */
  readonly protocolVersion?: 4 | 5;
}

/** Runs the fleet against one target: connect, warm up, measure a window, stop. */
export async function runPhase(opts: AgentBenchOptions, qos: 0 | 1, target: Target): Promise<PhaseResult> {
  const started = performance.now();
  const fleet = await FleetThreads.start(
    {
      url: target.url,
      devices: opts.devices,
      rate: opts.rate,
      qos,
      maxInFlight: opts.maxInFlight,
      eventRate: 0,
      drainTimeout: DRAIN_MS,
      protocolVersion: target.protocolVersion ?? 4,
    },
    fleetThreads(opts, qos),
  );
  try {
    // The window opens once every device has been connected for the warm-up, or — a busy broker answers CONNECT
    // late — CONNECT_BUDGET_MS after the start with the devices connected by then (the report says how many).
    const deadline = started + Math.max(CONNECT_BUDGET_MS, opts.warmup * 1000);
    let before = await fleet.totals();
    let allConnectedAt: number | null = null;
    for (;;) {
      const now = performance.now();
      if (allConnectedAt === null && before.connected >= opts.devices) allConnectedAt = now;
      if (allConnectedAt !== null ? now >= allConnectedAt + opts.warmup * 1000 : now >= deadline) break;
      await sleep(100);
      before = await fleet.totals();
    }
    const t0 = performance.now();
    const connectSeconds = ((allConnectedAt ?? t0) - started) / 1000;
    opts.progress(
      `QoS ${qos} ${target.name}: ${before.connected} devices connected ${((t0 - started) / 1000).toFixed(1)} s after start, measuring ${opts.seconds} s`,
    );
    const cpu0 = cpuSecondsOf(target.pid);
    const own0 = process.cpuUsage();
    const taken0 = await target.taken();
    await sleep(opts.seconds * 1000);
    const [taken1, after] = await Promise.all([target.taken(), fleet.totals()]);
    const cpuSeconds = cpuSecondsOf(target.pid) - cpu0;
    const own = process.cpuUsage(own0);
    const s = (performance.now() - t0) / 1000;
    const rssBytes = rssOf(target.pid);
    const summary = await fleet.stop();
    const rate = (taken1 - taken0) / s;
    const fleetBusy = after.busy(before);
    const fleetCores = (own.user + own.system) / 1e6 / s;
    opts.progress(
      `QoS ${qos} ${target.name}: ${fmtRate(rate)} readings/s, ${(cpuSeconds / s).toFixed(2)} cores; fleet ${fmtRate((after.sent - before.sent) / s)}/s, ${fleetCores.toFixed(2)} cores, loop ${Math.round(fleetBusy * 100)}% busy; stopped ${((performance.now() - t0) / 1000 - s).toFixed(1)} s after the window`,
    );
    return {
      rate,
      offered: (after.sent - before.sent) / s,
      latency: summary.ackLatencyMs,
      rssBytes,
      cpuSeconds,
      fleetBusy,
      fleetCores,
      seconds: s,
      summary,
      connected: Math.min(before.connected, after.connected),
      connectSeconds,
    };
  } finally {
    await fleet.stop();
  }
}

/** The mosquitto relay at one QoS: a fresh subscriber counting what mosquitto delivers. */
export async function relayPhase(
  opts: AgentBenchOptions,
  qos: 0 | 1,
  relay: Child,
  protocolVersion: 4 | 5 = 4,
): Promise<PhaseResult> {
  const sub = mqttConnect(relay.url, {
    clientId: `bench-relay-${qos}`,
    clean: true,
    reconnectPeriod: 0,
    log: () => undefined,
  });
  let delivered = 0;
  sub.on('message', () => delivered++);
  try {
    await new Promise<void>((resolve, reject) => {
      sub.once('error', reject);
      sub.once('connect', () =>
        sub.subscribe('devices/+/telemetry', { qos }, (err) => (err ? reject(err) : resolve())),
      );
    });
    return await runPhase(opts, qos, {
      name: protocolVersion === 5 ? 'mosquitto relay, MQTT 5' : 'mosquitto relay',
      url: relay.url,
      taken: async () => delivered,
      pid: relay.child.pid,
      protocolVersion,
    });
  } finally {
    await new Promise<void>((resolve) => sub.end(true, {}, () => resolve()));
  }
}
