/**
 * The benchmark fleet in worker threads of this process: one Fleet per thread, the devices shared out by
 * `firstIndex`, so the load generator can use more than one core while the broker under test runs in a child
 * process. The main thread asks each worker for totals and merges them.
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Fleet, type FleetOptions, type FleetSummary, type FleetTotals } from '../fleet/fleet.js';

const FLEET_WORKER = 'otlp-edge-bench-fleet';
type ToWorker = { cmd: 'totals' } | { cmd: 'stop' };
type FromWorker =
  | { type: 'started' }
  | { type: 'totals'; totals: FleetTotals; elu: EventLoopUtilization }
  | { type: 'summary'; summary: Omit<FleetSummary, 'perDevice'> }
  | { type: 'error'; message: string };
interface FleetSnapshot {
  sent: number;
  connected: number;
  elus: EventLoopUtilization[];
  busy(earlier: FleetSnapshot): number;
}
export type MergedSummary = Pick<
  FleetSummary,
  'sent' | 'acked' | 'errors' | 'neverConnected' | 'lastError' | 'ackLatencyMs'
>;

/**
 * One fleet shared out over worker threads (devices split by `firstIndex`, the rate split alike), so a fleet that
 * one event loop cannot drive fast enough can use another core. Asks are answered in order, one at a time.
 */
export class FleetThreads {
  private stopping: Promise<MergedSummary> | null = null;

  private constructor(private readonly workers: Worker[]) {}

  static async start(options: FleetOptions, threads: number): Promise<FleetThreads> {
    const devices = options.devices ?? 1;
    const n = Math.max(1, Math.min(threads, devices));
    const workers: Worker[] = [];
    let first = 0;
    for (let i = 0; i < n; i++) {
      const count = Math.floor(devices / n) + (i < devices % n ? 1 : 0);
      const part: FleetOptions = {
        ...options,
        devices: count,
        firstIndex: first,
        rate: ((options.rate ?? devices) * count) / devices,
        seed: 1 + i,
      };
      first += count;
      workers.push(new Worker(new URL(import.meta.url), { workerData: { role: FLEET_WORKER, options: part } }));
    }
    const fleet = new FleetThreads(workers);
    try {
      await Promise.all(workers.map((w) => reply(w, null, 'started')));
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
    return fleet;
  }

  /** Telemetry messages handed to MQTT.js so far, devices connected now, all threads; and how busy the threads'
   *  event loops were since an earlier snapshot (mean over threads, 0–1). */
  async totals(): Promise<FleetSnapshot> {
    const all = (await Promise.all(this.workers.map((w) => reply(w, { cmd: 'totals' }, 'totals')))).map(
      (m) => m as Extract<FromWorker, { type: 'totals' }>,
    );
    const elus = all.map((m) => m.elu);
    return {
      sent: all.reduce((n, m) => n + m.totals.sent, 0),
      connected: all.reduce((n, m) => n + m.totals.connected, 0),
      elus,
      busy: (earlier) =>
        elus.reduce((sum, e, i) => {
          const active = e.active - earlier.elus[i].active;
          const idle = e.idle - earlier.elus[i].idle;
          return sum + (active + idle > 0 ? active / (active + idle) : 0);
        }, 0) / elus.length,
    };
  }

  /** Stops every thread's fleet (draining acks) and merges the summaries; idempotent. */
  stop(): Promise<MergedSummary> {
    this.stopping ??= (async () => {
      const all = (await Promise.all(this.workers.map((w) => reply(w, { cmd: 'stop' }, 'summary')))).map(
        (m) => (m as Extract<FromWorker, { type: 'summary' }>).summary,
      );
      await Promise.all(this.workers.map((w) => w.terminate()));
      const count = all.reduce((n, s) => n + s.ackLatencyMs.count, 0);
      return {
        sent: all.reduce((n, s) => n + s.sent, 0),
        acked: all.reduce((n, s) => n + s.acked, 0),
        errors: all.reduce((n, s) => n + s.errors, 0),
        neverConnected: all.reduce((n, s) => n + s.neverConnected, 0),
        lastError: all.find((s) => s.lastError !== null)?.lastError ?? null,
        // Exact for one thread; across threads (equal shares of one load) a count-weighted p50 and the worst p99.
        ackLatencyMs: {
          p50: count === 0 ? 0 : all.reduce((n, s) => n + s.ackLatencyMs.p50 * s.ackLatencyMs.count, 0) / count,
          p99: Math.max(...all.map((s) => s.ackLatencyMs.p99)),
          max: Math.max(...all.map((s) => s.ackLatencyMs.max)),
          count,
        },
      };
    })();
    return this.stopping;
  }
}

function reply(w: Worker, ask: ToWorker | null, type: FromWorker['type']): Promise<FromWorker> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: FromWorker) => {
      w.off('error', onError);
      if (m.type === 'error') reject(new Error(`fleet thread: ${m.message}`));
      else if (m.type !== type) reject(new Error(`fleet thread answered '${m.type}', expected '${type}'`));
      else resolve(m);
    };
    const onError = (err: Error) => {
      w.off('message', onMessage);
      reject(err);
    };
    w.once('message', onMessage);
    w.once('error', onError);
    if (ask !== null) w.postMessage(ask);
  });
}

/** A worker thread's side: runs its share of the fleet and answers the asks. 'started' means connecting began. */
function fleetThread(port: NonNullable<typeof parentPort>, options: FleetOptions): void {
  const fleet = new Fleet(options);
  port.on('message', (m: ToWorker) => {
    if (m.cmd === 'totals')
      port.postMessage({
        type: 'totals',
        totals: fleet.totals(),
        elu: performance.eventLoopUtilization(),
      } satisfies FromWorker);
    else {
      void fleet
        .stop()
        .then(({ perDevice: _, ...summary }) => port.postMessage({ type: 'summary', summary } satisfies FromWorker));
    }
  });
  fleet.start().catch((e: Error) => port.postMessage({ type: 'error', message: e.message } satisfies FromWorker));
  port.postMessage({ type: 'started' } satisfies FromWorker);
}

if (!isMainThread && parentPort !== null && (workerData as { role?: string } | null)?.role === FLEET_WORKER) {
  fleetThread(parentPort, (workerData as { options: FleetOptions }).options);
}
