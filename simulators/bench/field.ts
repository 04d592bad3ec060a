/**
 * `otlp-edge-sim bench field`: the agent at field load — N devices (1,000 and 10,000 by default), each publishing
 * one QoS 1 reading per second from the lean MQTT client — with its uplink connected to a real aggregator, beside
 * the same fleet held by the Node socket floor (floor-broker.ts: a socket per device, nothing kept) and by mosquitto,
 * one target at a time:
 *
 *   memory      RSS once every device is connected and the load is steady (the highest of one sample per second
 *               over the settle window), heap per connection, idle RSS and private memory (uplink connected, no
 *               device, after a rest); the agent runs with the node flags of the gateway service (field-rest.ts)
 *   idle CPU    with no device, and with 1,000 connected devices that stay quiet
 *   responsive  the agent's event-loop delay p99 over the settle window, the devices' QoS 1 ack latency
 *   connect     seconds until all N devices were connected, every connected device publishing meanwhile
 *   latency     at the largest N (10,000 readings/s by default): device timestamp → the reading arriving on the
 *               owner's live stream, which sends a batch's readings once they are durable in its state; an HDR
 *               histogram (1 ms resolution) gives p50 / p99 / p999 / max
 *   loss        every reading the agent acknowledged (by device and seq) must arrive on that stream
 *   bytes       uplink payload bytes per point over the window, so latency is never bought with bytes unseen
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as hdr from 'hdr-histogram-js';
import WebSocket from 'ws';
import { stringify } from 'yaml';
import { mosquittoPath, startMosquitto } from '../../runtime/process/mosquitto.js';
import { AckedSeqs } from '../fleet/device.js';
import { Fleet, type FleetSummary } from '../fleet/fleet.js';
import { ackRows, atRest, heapUsed } from './field-rest.js';
import { shippedAgent } from './shipped-agent.js';
import { rssOf, startChild, track, type Child } from './processes.js';
import { newReport, type BenchReport, type BenchRow } from './report.js';
import { histogramQuantile } from './uplink-measures.js';
import { freeLoopbackPort, scrapeMetric } from './util.js';

export interface FieldBenchOptions {
  /** Fleet sizes, each device one reading per second; default [1000, 10000]. The largest is timed for latency. */
  sizes: number[];
  /** Seconds of steady load after every device connected, over which RSS is sampled; default 15. */
  settleSeconds: number;
  /** Seconds of the latency window at the largest size; default 30. */
  latencySeconds: number;
  /** Measure mosquitto beside the agent when it is installed; default true. */
  mosquitto: boolean;
  progress: (line: string) => void;
}

export const FIELD_BENCH_DEFAULTS: Readonly<FieldBenchOptions> = Object.freeze({
  sizes: [1000, 10_000],
  settleSeconds: 15,
  latencySeconds: 30,
  mosquitto: true,
  progress: (line: string) => void process.stderr.write(`bench field: ${line}\n`),
});

const here = (rel: string) => fileURLToPath(new URL(rel, import.meta.url));
const MiB = 2 ** 20;
/** A fleet that has not connected every device by then is measured with those it has (the report says so). */
const CONNECT_LIMIT_MS = 90_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Held {
  /** Seconds from the fleet's start until every device was connected (or the limit, when some never were). */
  connectSeconds: number;
  connected: number;
  /** Highest RSS sampled over the settle window. */
  rss: number;
  /** The target's event-loop delay p99 over the settle window (ms), where it reports one. */
  lagP99Ms?: number;
}

/** Connects N lean devices at 1 reading/s to `url` and holds them for the settle window; the fleet keeps going. */
async function hold(
  url: string,
  pid: number | undefined,
  n: number,
  o: FieldBenchOptions,
  label: string,
  metrics?: () => Promise<string>,
) {
  const fleet = new Fleet({
    url,
    devices: n,
    rate: n,
    qos: 1,
    eventRate: 0,
    client: 'lean',
    prefix: `field-${n}-`,
    connectTimeout: 30_000,
    drainTimeout: 5000,
  });
  const t0 = performance.now();
  await fleet.start();
  while (fleet.connected < n && performance.now() - t0 < CONNECT_LIMIT_MS) await sleep(100);
  const connectSeconds = (performance.now() - t0) / 1000;
  o.progress(`${label}: ${fleet.connected} of ${n} devices connected in ${connectSeconds.toFixed(1)} s; settling`);
  await metrics?.(); // prom-client's loop-delay monitor restarts at every scrape: the next one covers the window
  let rss = 0;
  for (let s = 0; s < o.settleSeconds; s++) {
    await sleep(1000);
    rss = Math.max(rss, rssOf(pid));
  }
  const held: Held = { connectSeconds, connected: fleet.connected, rss };
  if (metrics) held.lagP99Ms = 1000 * scrapeMetric(await metrics(), 'otlp_edge_agent_nodejs_eventloop_lag_p99_seconds');
  return { fleet, held };
}

/** What the owner's live stream showed: every reading's seq by device, and the delay of those in the window. */
class StreamWatch {
  readonly seen = new Map<string, AckedSeqs>();
  readonly delay = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
  recording = false;
  readings = 0;
  dropped = 0;
  private readonly ws: WebSocket;

  constructor(apiPort: number) {
    this.ws = new WebSocket(`ws://127.0.0.1:${apiPort}/v1/stream?kind=reading`);
    this.ws.on('message', (data) => this.onMessage(String(data)));
  }

  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }

  private onMessage(text: string): void {
    const m = JSON.parse(text) as { type: string; device?: string; ts?: string; seq?: number; count?: number };
    if (m.type === 'dropped') this.dropped += m.count ?? 0;
    if (m.type !== 'reading' || m.device === undefined || m.seq === undefined) return;
    this.readings++;
    if (this.recording) this.delay.recordValue(Math.max(1, Date.now() - Date.parse(m.ts!)));
    let s = this.seen.get(m.device);
    if (s === undefined) this.seen.set(m.device, (s = new AckedSeqs()));
    s.add(m.seq, m.seq);
  }

  /** Acknowledged readings of `fleet` not (yet) seen on the stream. */
  missing(acked: Map<string, { ackedSeqs: AckedSeqs }>): number {
    let n = 0;
    for (const [id, d] of acked) {
      const s = this.seen.get(id);
      for (const seq of d.ackedSeqs.toArray()) if (!s?.has(seq)) n++;
    }
    return n;
  }

  close(): void {
    this.ws.close();
  }
}

export async function benchField(options: Partial<FieldBenchOptions> = {}): Promise<BenchReport> {
  const o: FieldBenchOptions = { ...FIELD_BENCH_DEFAULTS, ...options };
  const sizes = [...o.sizes].sort((a, b) => a - b);
  const dir = mkdtempSync(join(tmpdir(), 'otlp-edge-bench-field-'));
  const children: Child[] = [];
  const report = newReport('field');
  try {
    // ---- the floor and mosquitto, one size at a time ----
    const floor = await startChild('floor', here('./floor-broker.js'), (m, h) => [String(m), String(h)], children);
    await sleep(1000);
    const floorIdle = rssOf(floor.child.pid);
    const floors = new Map<number, Held>();
    for (const n of sizes) {
      const { fleet, held } = await hold(floor.url, floor.child.pid, n, o, `floor ${n}`);
      await fleet.stop();
      floors.set(n, held);
    }
    await floor.stop();
    const mosquittos = new Map<number, Held>();
    if (o.mosquitto && mosquittoPath()) {
      const m = await startMosquitto(dir, await freeLoopbackPort(), ['log_dest none', 'max_connections -1']);
      const mq = track('mosquitto', m.child, m.url, children);
      for (const n of sizes) {
        const { fleet, held } = await hold(mq.url, mq.child.pid, n, o, `mosquitto ${n}`);
        await fleet.stop();
        mosquittos.set(n, held);
      }
      await mq.stop();
    }

    // ---- the agent, its uplink connected to an aggregator ----
    const agg = await startAggregator(dir, children);
    const agent = await startAgent(dir, agg.grpcPort, children);
    const watch = new StreamWatch(agg.apiPort);
    await watch.opened();
    const idle = await atRest(report, agent, floorIdle, o);
    for (const n of sizes) {
      const largest = n === sizes[sizes.length - 1];
      const { fleet, held } = await hold(agent.url, agent.child.pid, n, o, `agent ${n}`, agent.metrics);
      const heap = heapUsed(await agent.metrics());
      rows(report, n, held, floors.get(n)!, mosquittos.get(n), (heap - idle.heap) / n);
      const summary = largest
        ? await latency(report, n, fleet, watch, { agent, agg: agg.child }, o)
        : await fleet.stop();
      ackRows(report, n, summary, held);
    }
    watch.close();
    return report;
  } finally {
    for (const c of children.reverse()) await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function rows(report: BenchReport, n: number, agent: Held, floor: Held, mosq: Held | undefined, heapPerDevice: number) {
  const devices = `${n.toLocaleString('en-US')} devices`;
  const partial = (h: Held, who: string) =>
    h.connected < n ? `; only ${h.connected.toLocaleString('en-US')} connected to ${who}` : '';
  const rss: BenchRow = {
    name: `agent RSS, ${devices} at 1 reading/s, uplink connected`,
    value: agent.rss / MiB,
    unit: 'MiB',
    baseline: { name: 'Node socket floor', value: floor.rss / MiB },
    // DESIGN: ≤ 100 MB at 1,000 devices, ≤ 2 × the floor at 10,000 (goals 75 MB and 1.3 ×).
    ...(n === 1000
      ? { budget: { op: '<=', bound: 100 }, goal: { op: '<=', bound: 75 } }
      : { budget: { op: '<=', bound: 2, ratio: true }, goal: { op: '<=', bound: 1.3, ratio: true } }),
    note: `highest of one sample per second at steady load${partial(agent, 'the agent')}${partial(floor, 'the floor')}`,
  };
  report.rows.push(rss);
  if (mosq)
    report.rows.push({
      name: `agent RSS vs mosquitto, ${devices}`,
      value: agent.rss / MiB,
      unit: 'MiB',
      baseline: { name: 'mosquitto', value: mosq.rss / MiB },
      note: `mosquitto keeps no readings (no subscriber)${partial(mosq, 'mosquitto')}`,
    });
  report.rows.push({
    name: `agent heap per device, ${devices}`,
    value: heapPerDevice / 1024,
    unit: 'KiB',
    note: 'V8 heap used over idle, per connected device',
  });
  report.rows.push({
    name: `agent connect of ${devices} at field load`,
    value: agent.connectSeconds,
    unit: 's',
    baseline: { name: 'Node socket floor', value: floor.connectSeconds },
    note: 'lean MQTT clients, unlimited connect rate; connected devices publish meanwhile',
  });
}

async function latency(
  report: BenchReport,
  n: number,
  fleet: Fleet,
  watch: StreamWatch,
  { agent, agg }: { agent: Child; agg: Child },
  o: FieldBenchOptions,
): Promise<FleetSummary> {
  const before = await agent.metrics();
  const aggBefore = await agg.metrics();
  watch.delay.reset();
  watch.recording = true;
  o.progress(`agent ${n}: latency window of ${o.latencySeconds} s at ${n} readings/s`);
  await sleep(o.latencySeconds * 1000);
  watch.recording = false;
  const after = await agent.metrics();
  const aggAfter = await agg.metrics();
  const summary = await fleet.stop();
  const acked = new Map([...summary.perDevice].filter(([id]) => id.startsWith(`field-${n}-`)));
  // What the agent acknowledged last is still on its way: wait until it arrives or stops arriving.
  let missing = watch.missing(acked);
  for (let quiet = 0, last = -1; missing > 0 && quiet < 10;) {
    await sleep(500);
    quiet = watch.readings === last ? quiet + 1 : 0;
    last = watch.readings;
    missing = watch.missing(acked);
  }
  const h = watch.delay;
  const at = (p: number) => h.getValueAtPercentile(p);
  const d = (name: string) => scrapeMetric(after, name) - scrapeMetric(before, name);
  const load = `${n.toLocaleString('en-US')} readings/s`;
  report.rows.push(
    {
      name: `device → aggregator latency p50, ${load}`,
      value: at(50),
      unit: 'ms',
      note: `device ts to the reading on the owner's live stream (sent once durable); HDR, ${h.totalCount.toLocaleString('en-US')} readings`,
    },
    {
      name: `device → aggregator latency p99, ${load}`,
      value: at(99),
      unit: 'ms',
      // The node's own figure (reading ts → durable, Prometheus buckets): the stream's delivery is the difference.
      baseline: {
        name: "aggregator's reading_delay",
        value: 1000 * histogramQuantile(aggBefore, aggAfter, 'otlp_edge_aggregator_reading_delay_seconds', 0.99),
      },
      budget: { op: '<=', bound: 250 },
      goal: { op: '<=', bound: 100 },
    },
    { name: `device → aggregator latency p999, ${load}`, value: at(99.9), unit: 'ms' },
    { name: `device → aggregator latency max, ${load}`, value: h.maxValue, unit: 'ms' },
    {
      name: `uplink payload bytes per point, ${load}`,
      value:
        d('otlp_edge_agent_uplink_bytes_total{outcome="ok"}') / d('otlp_edge_agent_uplink_points_total{outcome="ok"}'),
      unit: 'B/point',
      note: 'frame payloads in the latency window, without gRPC framing (bench uplink counts every byte)',
    },
    {
      name: `loss, ${load}: acknowledged readings never delivered`,
      value: missing,
      unit: 'readings',
      budget: { op: '<=', bound: 0 },
      note: `${summary.readings.acked.toLocaleString('en-US')} acknowledged${watch.dropped > 0 ? `; the stream dropped ${watch.dropped} messages for this slow reader, so an upper bound` : ''}`,
    },
  );
  return summary;
}

async function startAggregator(dir: string, children: Child[]) {
  const grpcPort = await freeLoopbackPort();
  let apiPort = 0;
  const child = await startChild(
    'aggregator',
    here('../../aggregator/main.js'),
    (_mqtt, http) => {
      apiPort = http;
      writeFileSync(
        join(dir, 'aggregator.yaml'),
        stringify({
          node: { id: 'field-agg', data_dir: join(dir, 'aggregator') },
          grpc: { host: '127.0.0.1', port: grpcPort },
          otlp_http: { enabled: false },
          api: { host: '127.0.0.1', port: http },
          log: { level: 'warn' },
        }),
      );
      return ['--config', join(dir, 'aggregator.yaml')];
    },
    children,
  );
  return { grpcPort, apiPort, child };
}

async function startAgent(dir: string, grpcPort: number, children: Child[]) {
  return startChild(
    'agent',
    here('../../agent/main.js'),
    (mqtt, http) => {
      writeFileSync(
        join(dir, 'agent.yaml'),
        stringify({
          agent: { id: 'field-gw', data_dir: join(dir, 'agent') },
          mqtt: { broker: { tcp: { host: '127.0.0.1', port: mqtt }, allow_anonymous: true } },
          uplink: { endpoints: [`127.0.0.1:${grpcPort}`] },
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
}
