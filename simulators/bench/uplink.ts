/**
 * `otlp-edge-sim bench uplink`: what the uplink costs on the link, and how fresh the data is, at field load (1,000
 * devices, one QoS 1 reading per second each) and at a burst — with the agent and one aggregator as real processes,
 * the link between them through a byte-counting TCP proxy (every byte: gRPC, HTTP/2, acks), and beside baselines
 * priced on exactly the readings the fleet published in the window:
 *
 *   OTLP protobuf, OTLP + gzip in 1,000- and 8,192-point requests, OTLP + zstd in 8,192-point requests (what a
 *   Collector-like exporter sends), and the agent's stored batches one per request (the uplink before streams).
 *
 * Figures per load: bytes per point on the wire (and back), requests/s and points per request, device → aggregator
 * latency (the reading's timestamp to durable in the aggregator's state: its reading_delay histogram), QoS 1 ack
 * latency at the devices, and the agent's CPU per point and RSS.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { Fleet } from '../fleet/fleet.js';
import { cpuSecondsOf, rssOf, startChild, type Child } from './processes.js';
import { shippedAgent } from './shipped-agent.js';
import { newReport, type BenchReport } from './report.js';
import { baselines, countingProxy, histogramQuantile } from './uplink-measures.js';

import { freeLoopbackPort, scrapeMetric } from './util.js';

export interface UplinkBenchOptions {
  /** Devices, one MQTT connection each; default 1,000. */
  devices: number;
  /** Seconds measured at field load (one reading per device per second); default 30. */
  seconds: number;
  /** Readings per second of the burst (the same devices, faster); default 20,000; 0 = no burst. */
  burstRate: number;
  /** Seconds measured at the burst; default 10. */
  burstSeconds: number;
  /** Seconds of load before each window; default 5. */
  warmup: number;
  /** Seconds of field load with the aggregator unreachable, to measure how compactly the backlog is kept; 0 = skip. */
  outageSeconds: number;
  /** The agent to measure (its main.js), e.g. an older release for a before/after comparison; default this one. */
  agentMain?: string;
  /** The agent's uplink.max_delay, as YAML (e.g. '100ms'); default: the agent's default. */
  maxDelay?: string;
  progress: (line: string) => void;
}

export const UPLINK_BENCH_DEFAULTS: Readonly<UplinkBenchOptions> = Object.freeze({
  devices: 1000,
  seconds: 30,
  burstRate: 20_000,
  burstSeconds: 10,
  outageSeconds: 20,
  warmup: 5,
  progress: (line: string) => void process.stderr.write(`bench uplink: ${line}\n`),
});

const here = (rel: string) => fileURLToPath(new URL(rel, import.meta.url));
const GATEWAY = 'bench-gw';

interface LoadFigures {
  seconds: number;
  points: number;
  upBytes: number;
  downBytes: number;
  requests: number;
  storedBatches: number;
  storedBytes: number;
  delayP50: number;
  delayP99: number;
  ackP50: number;
  ackP99: number;
  cpuUsPerPoint: number;
  rss: number;
  base: ReturnType<typeof baselines>;
}

export async function benchUplink(options: Partial<UplinkBenchOptions> = {}): Promise<BenchReport> {
  const opts = { ...UPLINK_BENCH_DEFAULTS, ...options };
  const dir = mkdtempSync(join(tmpdir(), 'otlp-edge-bench-uplink-'));
  const children: Child[] = [];
  let proxy: Awaited<ReturnType<typeof countingProxy>> | null = null;
  try {
    const grpcPort = await freeLoopbackPort();
    proxy = await countingProxy(grpcPort);
    const proxyPort = proxy.port;
    const agg = await startChild(
      'aggregator',
      here('../../aggregator/main.js'),
      (_mqtt, http) => {
        writeFileSync(
          join(dir, 'aggregator.yaml'),
          stringify({
            node: { id: 'bench-agg', data_dir: join(dir, 'aggregator') },
            grpc: { host: '127.0.0.1', port: grpcPort },
            otlp_http: { enabled: false },
            api: { host: '127.0.0.1', port: http },
            // The ring names the proxy, so the ring-aware agent's traffic goes through it.
            cluster: { advertise: `127.0.0.1:${proxyPort}` },
            log: { level: 'warn' },
          }),
        );
        return ['--config', join(dir, 'aggregator.yaml')];
      },
      children,
    );
    const agent = await startChild(
      'agent',
      opts.agentMain ?? here('../../agent/main.js'),
      (mqtt, http) => {
        writeFileSync(
          join(dir, 'agent.yaml'),
          stringify({
            agent: { id: GATEWAY, data_dir: join(dir, 'agent') },
            mqtt: { broker: { tcp: { host: '127.0.0.1', port: mqtt }, allow_anonymous: true } },
            uplink: {
              endpoints: [`127.0.0.1:${proxyPort}`],
              ...(opts.maxDelay ? { max_delay: opts.maxDelay } : {}),
            },
            http: { host: '127.0.0.1', port: http },
            log: { level: 'warn' },
          }),
        );
        return ['--config', join(dir, 'agent.yaml')];
      },
      children,
      shippedAgent().nodeArgs,
      shippedAgent().env,
    );
    const report = newReport('uplink');
    const field = await measureLoad('field', opts.devices, opts.devices, opts.seconds, opts, agent, agg, proxy);
    rows(report, 'field load', `${opts.devices.toLocaleString('en-US')} devices × 1 reading/s`, field, true);
    if (opts.outageSeconds > 0) await measureOutage(dir, opts, children, report);
    if (opts.burstRate > 0) {
      const burst = await measureLoad(
        'burst',
        opts.devices,
        opts.burstRate,
        opts.burstSeconds,
        opts,
        agent,
        agg,
        proxy,
      );
      rows(report, 'burst', `${opts.burstRate.toLocaleString('en-US')} readings/s`, burst, false);
    }
    return report;
  } finally {
    for (const c of children.reverse()) await c.stop();
    proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measureLoad(
  label: string,
  devices: number,
  rate: number,
  seconds: number,
  opts: UplinkBenchOptions,
  agent: Child,
  agg: Child,
  proxy: { up: () => number; down: () => number },
): Promise<LoadFigures> {
  let recording = false;
  const published: { deviceId: string; payload: string | Buffer }[] = [];
  const fleet = new Fleet({
    url: agent.url,
    devices,
    rate,
    qos: 1,
    eventRate: 0,
    prefix: `${label}-`,
    onPublish: (deviceId, payload) => recording && published.push({ deviceId, payload }),
  });
  opts.progress(`${label}: connecting ${devices} devices`);
  await fleet.start();
  await new Promise((r) => setTimeout(r, opts.warmup * 1000));
  const pid = agent.child.pid;
  const snap = async () => ({
    agent: await agent.metrics(),
    agg: await agg.metrics(),
    up: proxy.up(),
    down: proxy.down(),
    cpu: cpuSecondsOf(pid),
  });
  const a = await snap();
  recording = true;
  opts.progress(`${label}: measuring ${seconds} s at ${rate} readings/s`);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  recording = false;
  const b = await snap();
  const rss = rssOf(pid);
  const summary = await fleet.stop();
  // Readings of the window still on their way are applied (and observed) before the latency is read.
  await new Promise((r) => setTimeout(r, 1500));
  const aggAfter = await agg.metrics();
  const d = (name: string) => scrapeMetric(b.agent, name) - scrapeMetric(a.agent, name);
  const points = d('otlp_edge_agent_uplink_points_total{outcome="ok"}');
  return {
    seconds,
    points,
    upBytes: b.up - a.up,
    downBytes: b.down - a.down,
    requests: d('otlp_edge_agent_uplink_requests_total{outcome="ok"}'),
    storedBatches: d('otlp_edge_agent_batches_stored_total'),
    storedBytes:
      d('otlp_edge_agent_bytes_stored_total') * (points / Math.max(1, d('otlp_edge_agent_points_stored_total'))),
    delayP50: histogramQuantile(a.agg, aggAfter, 'otlp_edge_aggregator_reading_delay_seconds', 0.5) * 1000,
    delayP99: histogramQuantile(a.agg, aggAfter, 'otlp_edge_aggregator_reading_delay_seconds', 0.99) * 1000,
    ackP50: summary.ackLatencyMs.p50,
    ackP99: summary.ackLatencyMs.p99,
    cpuUsPerPoint: ((b.cpu - a.cpu) * 1e6) / Math.max(1, points),
    rss,
    base: baselines(GATEWAY, published),
  };
}

/**
 * A second agent whose aggregator is unreachable, at field load: the backlog it keeps (packed after 2 s), in bytes
 * per point, beside the same batches as stored before packing — and the outage its default cap then holds.
 */
async function measureOutage(dir: string, opts: UplinkBenchOptions, children: Child[], report: BenchReport) {
  const deadPort = await freeLoopbackPort();
  const agent = await startChild(
    'agent (outage)',
    here('../../agent/main.js'),
    (mqtt, http) => {
      writeFileSync(
        join(dir, 'agent-outage.yaml'),
        stringify({
          agent: { id: `${GATEWAY}-outage`, data_dir: join(dir, 'agent-outage') },
          mqtt: { broker: { tcp: { host: '127.0.0.1', port: mqtt }, allow_anonymous: true } },
          uplink: { endpoints: [`127.0.0.1:${deadPort}`] },
          buffer: { pack_after: '2s' },
          http: { host: '127.0.0.1', port: http },
          log: { level: 'error' },
        }),
      );
      return ['--config', join(dir, 'agent-outage.yaml')];
    },
    children,
    shippedAgent().nodeArgs,
    shippedAgent().env,
  );
  const fleet = new Fleet({
    url: agent.url,
    devices: opts.devices,
    rate: opts.devices,
    qos: 1,
    eventRate: 0,
    prefix: 'outage-',
  });
  opts.progress(`outage: ${opts.outageSeconds} s of field load with the aggregator unreachable`);
  await fleet.start();
  await new Promise((r) => setTimeout(r, opts.outageSeconds * 1000));
  await fleet.stop();
  await new Promise((r) => setTimeout(r, 6000)); // the last batches grow old enough to be packed
  const m = await agent.metrics();
  const points = scrapeMetric(m, 'otlp_edge_agent_points_stored_total');
  const packed = scrapeMetric(m, 'otlp_edge_agent_uplink_backlog_bytes') / Math.max(1, points);
  const unpacked = scrapeMetric(m, 'otlp_edge_agent_bytes_stored_total') / Math.max(1, points);
  const pointsPerSecond =
    opts.devices * (points / Math.max(1, scrapeMetric(m, 'otlp_edge_agent_readings_received_total')));
  report.rows.push(
    {
      name: 'outage: backlog bytes per point, packed',
      value: packed,
      unit: 'B/point',
      baseline: { name: 'as committed', value: unpacked },
      note: `${points.toLocaleString('en-US')} points kept, buffer.pack_after 2s`,
    },
    {
      name: 'outage: hours of field load the default 256 MiB cap holds',
      value: (256 * 2 ** 20) / (packed * pointsPerSecond) / 3600,
      unit: 'h',
      baseline: { name: 'unpacked', value: (256 * 2 ** 20) / (unpacked * pointsPerSecond) / 3600 },
    },
  );
  await agent.stop();
}

function rows(report: BenchReport, load: string, note: string, f: LoadFigures, budgets: boolean): void {
  const perPoint = f.upBytes / Math.max(1, f.points);
  const gzip = { name: 'OTLP+gzip 1,000-pt', value: f.base.gzip1000 };
  report.rows.push(
    {
      name: `${load}: bytes on the wire per point`,
      value: perPoint,
      unit: 'B/point',
      baseline: gzip,
      ...(budgets
        ? {
            budget: { op: '<=', bound: 0.75, ratio: true } as const,
            goal: { op: '<=', bound: 1.4, note: 'and <= 0.33x OTLP+gzip' } as const,
          }
        : {}),
      note,
    },
    { name: `${load}: bytes per point, same readings as OTLP+gzip 8,192-pt`, value: f.base.gzip8192, unit: 'B/point' },
    { name: `${load}: bytes per point, same readings as OTLP+zstd 8,192-pt`, value: f.base.zstd8192, unit: 'B/point' },
    { name: `${load}: bytes per point, same readings as OTLP protobuf`, value: f.base.protobuf, unit: 'B/point' },
    {
      name: `${load}: bytes per point, stored batches one per request (the uplink before streams, payload only)`,
      value: f.storedBytes / Math.max(1, f.points),
      unit: 'B/point',
    },
    { name: `${load}: acks back per point`, value: f.downBytes / Math.max(1, f.points), unit: 'B/point' },
    {
      name: `${load}: requests per second`,
      value: f.requests / f.seconds,
      unit: 'req/s',
      baseline: { name: 'stored batches/s', value: f.storedBatches / f.seconds },
    },
    { name: `${load}: points per request`, value: f.points / Math.max(1, f.requests), unit: 'points' },
    {
      name: `${load}: device → aggregator latency p50`,
      value: f.delayP50,
      unit: 'ms',
      note: 'reading ts to durable in state',
    },
    {
      name: `${load}: device → aggregator latency p99`,
      value: f.delayP99,
      unit: 'ms',
      ...(budgets ? { budget: { op: '<=', bound: 250 } as const, goal: { op: '<=', bound: 100 } as const } : {}),
    },
    {
      name: `${load}: QoS 1 ack latency p50 / p99`,
      value: f.ackP50,
      unit: 'ms',
      note: `p99 ${f.ackP99.toFixed(1)} ms`,
    },
    { name: `${load}: agent CPU per point`, value: f.cpuUsPerPoint, unit: 'µs' },
    { name: `${load}: agent RSS`, value: f.rss / 2 ** 20, unit: 'MiB' },
    { name: `${load}: points in the window`, value: f.points, unit: 'points', note: `${f.base.points} priced` },
  );
}
