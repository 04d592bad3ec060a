/**
 * Parts of `otlp-edge-sim bench field` about the agent at rest and the devices' side of the load: the node flags the
 * agent ships with, idle RSS and CPU (no device, then 1,000 connected devices that stay quiet), and the QoS 1 ack
 * latency the devices saw.
 */
import { readFileSync } from 'node:fs';
import { Fleet, type FleetSummary } from '../fleet/fleet.js';
import { cpuSecondsOf, rssOf, type Child } from './processes.js';
import type { BenchReport } from './report.js';
import { describeShipped } from './shipped-agent.js';
import { scrapeMetric } from './util.js';

const MiB = 2 ** 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Seconds at rest before idle RSS is read: V8's memory reducer gives back start-up garbage about 10 s after. */
const REST_SECONDS = 15;
/** Seconds over which idle CPU is measured. */
const CPU_SECONDS = 10;
const QUIET_DEVICES = 1000;

/** Idle RSS and CPU, with no device and with 1,000 quiet ones; returns the idle RSS and V8 heap used. */
export async function atRest(
  report: BenchReport,
  agent: Child,
  floorIdle: number,
  o: { progress(line: string): void },
): Promise<{ rss: number; heap: number }> {
  const pid = agent.child.pid;
  o.progress(`agent at rest for ${REST_SECONDS} s`);
  await sleep((REST_SECONDS - CPU_SECONDS) * 1000);
  const cpu0 = cpuSecondsOf(pid);
  await sleep(CPU_SECONDS * 1000);
  const idleCpu = (100 * (cpuSecondsOf(pid) - cpu0)) / CPU_SECONDS;
  const idle = { rss: rssOf(pid), heap: heapUsed(await agent.metrics()) };
  report.rows.push({
    name: 'agent RSS idle, uplink connected',
    value: idle.rss / MiB,
    unit: 'MiB',
    baseline: { name: 'Node socket floor idle', value: floorIdle / MiB },
    budget: { op: '<=', bound: 60 },
    goal: { op: '<=', bound: 50 },
    note: `after ${REST_SECONDS} s at rest, ${describeShipped()} as the gateway service runs it`,
  });
  report.rows.push({
    name: 'agent private memory idle (RSS less shared file pages: the Node binary)',
    value: privateBytesOf(pid) / MiB,
    unit: 'MiB',
    note: 'anonymous memory from /proc/<pid>/smaps_rollup: what this process alone costs',
  });
  report.rows.push({ name: 'agent CPU idle, uplink connected', value: idleCpu, unit: '% of a core' });

  const quiet = new Fleet({
    url: agent.url,
    devices: QUIET_DEVICES,
    rate: 0.01, // one reading every 100 s across the fleet: connected, keep-alive pings, nearly nothing else
    qos: 1,
    eventRate: 0,
    client: 'lean',
    prefix: 'quiet-',
    connectTimeout: 30_000,
    drainTimeout: 2000,
  });
  await quiet.start();
  for (let i = 0; i < 300 && quiet.connected < QUIET_DEVICES; i++) await sleep(100);
  await sleep(3000);
  const cpu1 = cpuSecondsOf(pid);
  await sleep(CPU_SECONDS * 1000);
  const quietCpu = (100 * (cpuSecondsOf(pid) - cpu1)) / CPU_SECONDS;
  const connected = quiet.connected;
  await quiet.stop();
  report.rows.push({
    name: `agent CPU with ${QUIET_DEVICES.toLocaleString('en-US')} connected quiet devices`,
    value: quietCpu,
    unit: '% of a core',
    budget: { op: '<=', bound: 1 },
    note: `over ${CPU_SECONDS} s; ${connected.toLocaleString('en-US')} connected, keep-alive 60 s`,
  });
  return idle;
}

/** The devices' QoS 1 ack latency over the run at size `n`, and the agent's event-loop delay while it ran. */
export function ackRows(report: BenchReport, n: number, summary: FleetSummary, held: { lagP99Ms?: number }): void {
  const devices = `${n.toLocaleString('en-US')} devices at 1 reading/s`;
  report.rows.push(
    {
      name: `QoS 1 ack latency p50, ${devices}`,
      value: summary.ackLatencyMs.p50,
      unit: 'ms',
      note: `PUBLISH to PUBACK as the devices saw it (durable before ack), ${summary.ackLatencyMs.count.toLocaleString('en-US')} acks, connect storm included`,
    },
    { name: `QoS 1 ack latency p99, ${devices}`, value: summary.ackLatencyMs.p99, unit: 'ms' },
  );
  if (held.lagP99Ms !== undefined)
    report.rows.push({
      name: `agent event-loop delay p99, ${devices}`,
      value: held.lagP99Ms,
      unit: 'ms',
      budget: { op: '<=', bound: 50 },
      note: 'over the settle window (the agent samples its loop delay every 20 ms)',
    });
}

/** Anonymous (private) resident bytes of a process; 0 where unknown. */
function privateBytesOf(pid: number | undefined): number {
  try {
    const m = /^Anonymous:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export function heapUsed(metrics: string): number {
  return scrapeMetric(metrics, 'otlp_edge_agent_nodejs_heap_size_used_bytes');
}
