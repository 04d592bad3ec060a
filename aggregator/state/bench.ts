import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceStateStore } from './store.js';
import type { DeviceData } from '../device/types.js';

/**
 * Micro-benchmark of the state store alone: points/s through apply() into a real LevelDB (fsync on), batches from
 * several sources at once, each keeping a few in flight like agents do. Decoding is not included (the ingest does
 * it). Two batch shapes: 1,000 devices × 1 reading × 5 metrics, and 100 devices × 10 readings × 5 metrics.
 * Budget 250,000 points/s per node, goal 1,000,000 (the README's "Benchmarks").
 */
export interface StateBenchOptions {
  /** Seconds measured per shape (after one second of warm-up); default 5. */
  seconds?: number;
  /** Concurrent sources (agents); default 4. */
  sources?: number;
  /** Batches each source keeps in flight; default 4. */
  inFlight?: number;
  /** Devices per source; default 5,000 (20,000 on the node). */
  devicesPerSource?: number;
}

const METRICS = ['temperature', 'humidity', 'pressure', 'battery', 'rssi'];
const T0 = Date.UTC(2026, 0, 1);

interface Shape {
  name: string;
  devicesPerBatch: number;
  readings: number;
}

export async function benchStateApply(
  o: StateBenchOptions = {},
): Promise<{ name: string; value: number; unit: string }[]> {
  const opts = { seconds: 5, sources: 4, inFlight: 4, devicesPerSource: 5000, ...o };
  const rows: { name: string; value: number; unit: string }[] = [];
  const shapes: Shape[] = [
    { name: '1,000 devices × 1 reading × 5 metrics', devicesPerBatch: 1000, readings: 1 },
    { name: '100 devices × 10 readings × 5 metrics', devicesPerBatch: 100, readings: 10 },
  ];
  for (const shape of shapes) {
    const r = await runShape(shape, opts);
    rows.push(
      { name: `state apply, ${shape.name}, ${opts.sources} sources`, value: r.pointsPerSecond, unit: 'points/s' },
      // CPU of the whole process (LevelDB's threads included) per point: steadier than points/s on a shared machine.
      { name: `state apply, ${shape.name}: CPU per point`, value: r.cpuMicrosPerPoint, unit: 'µs' },
      { name: `state apply, ${shape.name}: batches per LevelDB write`, value: r.batchesPerWrite, unit: 'batches' },
      { name: `state apply, ${shape.name}: apply latency (mean)`, value: r.meanLatencyMs, unit: 'ms' },
    );
  }
  return rows;
}

async function runShape(shape: Shape, opts: Required<StateBenchOptions>) {
  const dir = mkdtempSync(join(tmpdir(), 'otlp-edge-state-bench-'));
  let clock = T0;
  const store = await DeviceStateStore.open({
    dir,
    offlineAfterMs: 60_000,
    rollupRetentionMs: 7 * 86_400_000,
    now: () => clock,
  });
  try {
    const batchesPerRound = Math.max(1, Math.floor(opts.devicesPerSource / shape.devicesPerBatch));
    // One batch per (source, slot); its arrays are rewritten in place before each send (apply() reads them at once).
    const sources = Array.from({ length: opts.sources }, (_, s) =>
      Array.from({ length: batchesPerRound }, (_, b) => makeBatch(`src${s}-b${b}`, shape)),
    );
    let points = 0;
    let batches = 0;
    let latency = 0;
    let measuring = false;
    let stop = false;
    const worker = async (s: number, lane: number) => {
      const mine = sources[s];
      // Lanes of one source take turns over its batches, so each device's readings stay in order.
      for (let i = lane; !stop; i += opts.inFlight) {
        const round = Math.floor(i / mine.length);
        const batch = mine[i % mine.length];
        fill(batch, shape, round);
        clock = T0 + round * shape.readings * 1000 + 500;
        const t = performance.now();
        const r = await store.apply(batch, { source: `agent-${s}`, seq: i + 1 });
        if (measuring) {
          points += r.points;
          batches++;
          latency += performance.now() - t;
        }
      }
    };
    const running = [];
    for (let s = 0; s < opts.sources; s++) for (let l = 0; l < opts.inFlight; l++) running.push(worker(s, l));
    await sleep(1000);
    const writes0 = store.writes;
    measuring = true;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    await sleep(opts.seconds * 1000);
    measuring = false;
    const cpu = process.cpuUsage(cpu0);
    const elapsed = (performance.now() - t0) / 1000;
    const writes = store.writes - writes0;
    stop = true;
    await Promise.all(running);
    return {
      pointsPerSecond: points / elapsed,
      cpuMicrosPerPoint: (cpu.user + cpu.system) / Math.max(1, points),
      batchesPerWrite: batches / Math.max(1, writes),
      meanLatencyMs: latency / Math.max(1, batches),
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function makeBatch(prefix: string, shape: Shape): DeviceData[] {
  const n = shape.readings * METRICS.length;
  return Array.from({ length: shape.devicesPerBatch }, (_, d) => ({
    deviceId: `${prefix}-dev-${String(d).padStart(4, '0')}`,
    // OTLP order: metric by metric, each in reading order.
    metric: Array.from({ length: n }, (_, p) => METRICS[Math.floor(p / shape.readings)]),
    ts: new Array<number>(n).fill(0),
    value: Array.from({ length: n }, (_, p) => 20 + (p % 7) * 0.5),
    seqTs: new Array<number>(shape.readings).fill(0),
    seq: new Array<number>(shape.readings).fill(0),
  }));
}

function fill(batch: DeviceData[], shape: Shape, round: number): void {
  for (const d of batch) {
    for (let r = 0; r < shape.readings; r++) {
      const seq = round * shape.readings + r;
      d.seq[r] = seq;
      d.seqTs[r] = T0 + seq * 1000;
    }
    for (let p = 0; p < d.ts.length; p++) {
      d.ts[p] = d.seqTs[p % shape.readings];
      d.value[p] += 0.25;
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
