/**
 * The agent benchmark's report rows (bench/agent.ts measures): each figure of the agent beside the baseline that fits
 * it, for one QoS.
 */
import type { MergedSummary } from './fleet-threads.js';
import type { BenchRow } from './report.js';
import { scrapeMetric } from './util.js';
import type { AgentBenchOptions } from './agent.js';
import { decodeTelemetry } from '../../protocol/payload/decode.js';
import { pointsOf } from '../../protocol/otlp/metrics-encoder.js';
import { telemetryBuilder } from '../fleet/payloads.js';
import { DeviceSignals } from '../fleet/signals.js';

const MiB = 1024 * 1024;
/** batch.max_points the agent under test runs with. */
export const MAX_POINTS = 5000;

export interface PhaseResult {
  /** Readings/s the target took over the window. */
  rate: number;
  /** Readings/s the fleet handed to MQTT.js over the window. */
  offered: number;
  latency: { p50: number; p99: number; count: number };
  rssBytes: number;
  /** CPU seconds the target's process used over the window (0 where /proc is missing). */
  cpuSeconds: number;
  /** Share of the window the fleet's event loop(s) were busy, 0–1: near 1, the fleet limited the load. */
  fleetBusy: number;
  /** Cores this process (the fleet, and the relay's subscriber) used over the window. */
  fleetCores: number;
  /** Length of the measured window. */
  seconds: number;
  /** Devices connected at both ends of the window. */
  connected: number;
  /** Seconds from the fleet's start until every device was connected (or the window opened without them). */
  connectSeconds: number;
  summary: MergedSummary;
}

/** What the agent's own /metrics say about the measured window. */
export interface AgentWindow {
  /** QoS 0 messages/s refused because commits fell behind (messages_dropped_total). */
  droppedPerSecond: number;
  pointsPerBatch: number;
  /** Mean time of one group commit: encode, zstd and the fsync'd write, as the agent times it. */
  commitMs: number;
  /** The agent's event-loop delay p99 (prom-client's monitor) at the window's end. */
  lagP99Ms: number;
}

export function agentWindow(before: string, after: string, seconds: number): AgentWindow {
  const d = (name: string) => scrapeMetric(after, name) - scrapeMetric(before, name);
  const batches = d('otlp_edge_agent_batches_stored_total');
  return {
    droppedPerSecond: d('otlp_edge_agent_messages_dropped_total{reason="overload"}') / seconds,
    pointsPerBatch: batches > 0 ? d('otlp_edge_agent_points_stored_total') / batches : 0,
    commitMs:
      (1000 * d('otlp_edge_agent_commit_duration_seconds_sum')) /
      Math.max(1, d('otlp_edge_agent_commit_duration_seconds_count')),
    lagP99Ms: 1000 * scrapeMetric(after, 'otlp_edge_agent_nodejs_eventloop_lag_p99_seconds'),
  };
}

export interface QosResults {
  agent: PhaseResult;
  window: AgentWindow;
  stored: { readings: number; bytes: number; dirBytes: number };
  bare: PhaseResult;
  mosq: PhaseResult | null;
}

/** The report's rows for one QoS: the agent's figures, each beside the baseline that fits it. */
export function rowsFor(
  opts: AgentBenchOptions,
  qos: 0 | 1,
  { agent: a, window: w, stored, bare, mosq }: QosResults,
): BenchRow[] {
  const rows: BenchRow[] = [];
  const offered = (r: PhaseResult) =>
    `fleet sent ${fmtRate(r.offered)}/s, its loop ${Math.round(r.fleetBusy * 100)}% busy${r.connected < opts.devices ? `, only ${r.connected} devices connected` : ''}`;
  const perCpu = (r: PhaseResult) => (r.rate * r.seconds) / r.cpuSeconds;
  const dropped = w.droppedPerSecond > 0 ? `, ${fmtRate(w.droppedPerSecond)}/s more dropped as overload` : '';
  rows.push({
    name: `agent ingest, QoS ${qos}${qos === 1 ? ' durable before ack' : ''}, stored`,
    value: a.rate,
    unit: 'readings/s',
    baseline: { name: 'bare aedes', value: bare.rate },
    budget: { op: '>=', bound: qos === 0 ? 50_000 : 25_000 },
    note: `${opts.devices} devices, ${offered(a)}${dropped}`,
  });
  if (mosq)
    rows.push({
      name: `agent ingest, QoS ${qos}, vs mosquitto relay`,
      value: a.rate,
      unit: 'readings/s',
      baseline: { name: 'mosquitto relay', value: mosq.rate },
      // DESIGN: QoS 1 durable must keep up with mosquitto's (not durable) acks; QoS 0 aims at the relay's rate.
      ...(qos === 1
        ? { budget: { op: '>=', bound: 1, ratio: true }, goal: { op: '>=', bound: 1.5, ratio: true } }
        : { goal: { op: '>=', bound: 1, ratio: true } }),
    });
  rows.push({
    name: `bare aedes, QoS ${qos}, publishes taken`,
    value: bare.rate,
    unit: 'readings/s',
    note: offered(bare),
  });
  if (mosq)
    rows.push({
      name: `mosquitto relay, QoS ${qos}, delivered to subscriber`,
      value: mosq.rate,
      unit: 'readings/s',
      note: offered(mosq),
    });
  // Readings per CPU second hold up better than readings/s when the cores are shared with other work.
  if (a.cpuSeconds > 0 && bare.cpuSeconds > 0)
    rows.push({
      name: `agent readings per CPU second, QoS ${qos}`,
      value: perCpu(a),
      unit: 'readings/CPU-s',
      baseline: { name: 'bare aedes', value: perCpu(bare) },
      note: `agent used ${(a.cpuSeconds / a.seconds).toFixed(2)} cores`,
    });
  if (mosq && a.cpuSeconds > 0 && mosq.cpuSeconds > 0)
    rows.push({
      name: `agent readings per CPU second, QoS ${qos}, vs mosquitto`,
      value: perCpu(a),
      unit: 'readings/CPU-s',
      baseline: { name: 'mosquitto', value: perCpu(mosq) },
      note: 'the mosquitto process only, not its subscriber',
    });
  if (qos === 1) {
    const threads = fleetThreads(opts, 1);
    const note = `closed loop: ${opts.maxInFlight} in flight per device${threads > 1 ? `; p50 weighted mean, p99 max of ${threads} fleet threads` : ''}`;
    rows.push({
      name: 'agent ack latency p50, QoS 1',
      value: a.latency.p50,
      unit: 'ms',
      baseline: { name: 'bare aedes', value: bare.latency.p50 },
      note,
    });
    rows.push({
      name: 'agent ack latency p99, QoS 1',
      value: a.latency.p99,
      unit: 'ms',
      baseline: { name: 'bare aedes', value: bare.latency.p99 },
    });
  }
  rows.push({
    name: `agent connect of all devices under load, QoS ${qos}`,
    value: a.connectSeconds,
    unit: 's',
    baseline: { name: 'bare aedes', value: bare.connectSeconds },
    note: `devices publish from their CONNACK on; agent event loop delay p99 ${w.lagP99Ms.toFixed(0)} ms${a.connected < opts.devices ? `; only ${a.connected} of ${opts.devices} connected when the window opened, so a lower bound` : ''}`,
  });
  if (w.pointsPerBatch > 0) {
    rows.push({
      name: `agent points per stored batch, QoS ${qos}`,
      value: w.pointsPerBatch,
      unit: 'points',
      budget: { op: '<=', bound: MAX_POINTS, note: 'batch.max_points' },
      note: `mean commit ${w.commitMs.toFixed(0)} ms (encode, zstd, fsync'd write)`,
    });
  }
  rows.push({
    name: `agent RSS, QoS ${qos}, under load`,
    value: a.rssBytes / MiB,
    unit: 'MiB',
    baseline: { name: 'bare aedes', value: bare.rssBytes / MiB },
    note: `${opts.devices} connections`,
  });
  rows.push({
    name: `agent stored bytes per reading, QoS ${qos}`,
    value: stored.bytes / stored.readings,
    unit: 'B/reading',
    baseline: { name: 'device JSON', value: SAMPLE.jsonBytes },
    note: 'zstd OTLP batches, bytes_stored_total',
  });
  rows.push({
    name: `agent LevelDB dir bytes per reading, QoS ${qos}`,
    value: stored.dirBytes / stored.readings,
    unit: 'B/reading',
    baseline: { name: 'device JSON', value: SAMPLE.jsonBytes },
    note: `${fmtRate(stored.readings)} readings stored`,
  });
  return rows;
}

export function fmtRate(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function sampleReading(): { readonly jsonBytes: number; readonly points: number } {
  const b = telemetryBuilder({ encoding: 'json', shape: 'flat', tsFormat: 'ms' });
  const ts = Date.now();
  b.begin(1);
  b.reading(ts, 12_345, new DeviceSignals(1).values(ts));
  const payload = Buffer.from(b.end());
  const [reading] = decodeTelemetry(payload, { arrivalMs: ts });
  return { jsonBytes: payload.length, points: pointsOf(reading) };
}

export function fleetThreads(opts: AgentBenchOptions, qos: 0 | 1): number {
  return opts.fleetThreads === 'auto' ? (qos === 0 ? 1 : 2) : opts.fleetThreads;
}

/** One fleet reading: its JSON bytes, and the points the agent stores for it. */
export const SAMPLE = sampleReading();
