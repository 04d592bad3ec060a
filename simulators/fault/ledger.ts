import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import mqtt from 'mqtt';
import { Compression, decompress } from '../../protocol/compression.js';
import { SEQ_METRIC } from '../../protocol/otlp/semconv.js';
import { visitMetricsRequest } from '../../protocol/otlp/visit.js';

/**
 * The two independent records a fault run's accounting compares, per device and seq: what the devices were told
 * is safe (their PUBACKs) and what came out of the far end (the aggregator's export, received by a local OTLP/HTTP
 * backend that decodes every request and counts each reading's seq).
 */

/** Seqs each device got a PUBACK for. */
export class Acks {
  readonly byDevice = new Map<string, Set<number>>();

  add(device: string, seq: number): void {
    let s = this.byDevice.get(device);
    if (s === undefined) this.byDevice.set(device, (s = new Set()));
    s.add(seq);
  }

  get total(): number {
    let n = 0;
    for (const s of this.byDevice.values()) n += s.size;
    return n;
  }
}

/** An OTLP/HTTP backend on 127.0.0.1 counting, per device, how often each seq was delivered. */
export class SeqBackend {
  readonly byDevice = new Map<string, Map<number, number>>();
  requests = 0;
  /** Distinct readings received so far. */
  distinct = 0;
  private server: Server | null = null;
  port = 0;

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          if (req.url === '/v1/metrics')
            this.take(Buffer.concat(chunks), String(req.headers['content-encoding'] ?? ''));
          this.requests++;
          res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
        } catch (e) {
          res.writeHead(400).end((e as Error).message);
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  private take(body: Buffer, encoding: string): void {
    const c = encoding === 'zstd' ? Compression.ZSTD : encoding === 'gzip' ? Compression.GZIP : Compression.NONE;
    const otlp = decompress(body, c);
    let device = '';
    visitMetricsRequest(otlp, {
      resource: (id) => (device = id),
      point: (metric, _ts, value) => {
        if (metric !== SEQ_METRIC) return;
        let m = this.byDevice.get(device);
        if (m === undefined) this.byDevice.set(device, (m = new Map()));
        const n = m.get(value) ?? 0;
        if (n === 0) this.distinct++;
        m.set(value, n + 1);
      },
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** The accounting of one run: every acknowledged reading is delivered, or the run failed. */
export interface Accounting {
  devices: number;
  /** Readings the devices got a PUBACK for. */
  acked: number;
  /** Distinct readings delivered to the backend (acknowledged or not: a reading stored before its PUBACK was lost). */
  delivered: number;
  /** Deliveries beyond the first of a reading (at-least-once: allowed, counted). */
  duplicated: number;
  /** Readings dropped by the agent's buffer cap, as it counted them (points / points per reading). */
  droppedCounted: number;
  /** Acknowledged readings never delivered. Must be 0 wherever the design promises it. */
  lost: number;
  /** The first few lost readings, `device:seq`. */
  lostExamples: string[];
  /**
   * Readings delivered although older ones of the same device were lost after them (per device, delivered seqs
   * between its first and last lost one): the cap drops oldest first but passes over batches being sent.
   */
  outOfOrderDrops: number;
}

export function account(acks: Acks, backend: SeqBackend, droppedCounted = 0): Accounting {
  let delivered = 0;
  let duplicated = 0;
  for (const m of backend.byDevice.values())
    for (const n of m.values()) {
      delivered++;
      duplicated += n - 1;
    }
  let lost = 0;
  let outOfOrderDrops = 0;
  const lostExamples: string[] = [];
  for (const [device, seqs] of acks.byDevice) {
    const got = backend.byDevice.get(device);
    let first = Infinity;
    let last = -Infinity;
    for (const s of seqs)
      if (!got?.has(s)) {
        lost++;
        if (s < first) first = s;
        if (s > last) last = s;
        if (lostExamples.length < 10) lostExamples.push(`${device}:${s}`);
      }
    if (got && first < last) for (const s of got.keys()) if (s > first && s < last) outOfOrderDrops++;
  }
  return {
    devices: acks.byDevice.size,
    acked: acks.total,
    delivered,
    duplicated,
    droppedCounted,
    lost,
    lostExamples,
    outOfOrderDrops,
  };
}

/**
 * Devices publishing QoS 1 readings (`{ seq, temperature }`) to `url`, each keeping `window` unacknowledged, and
 * reconnecting at once when the broker goes away; each PUBACK is recorded in `acks`.
 */
export function startDevices(url: string, count: number, window: number, acks: Acks): { stop(): Promise<void> } {
  const clients = Array.from({ length: count }, (_, i) => {
    const id = `fault-dev-${String(i).padStart(4, '0')}`;
    const client = mqtt.connect(url, { clientId: id, reconnectPeriod: 200, connectTimeout: 5000, clean: true });
    let seq = 0;
    let inFlight = 0;
    let stopped = false;
    const pump = () => {
      while (!stopped && client.connected && inFlight < window) {
        const s = seq++;
        inFlight++;
        client.publish(
          `devices/${id}/telemetry`,
          JSON.stringify({ seq: s, temperature: 20 + (s % 50) / 10 }),
          { qos: 1 },
          (err) => {
            inFlight--;
            if (!err) acks.add(id, s);
            if (!stopped) setImmediate(pump);
          },
        );
      }
    };
    client.on('connect', () => {
      // Messages in flight when the connection broke are abandoned (never acknowledged: not counted as sent).
      inFlight = 0;
      pump();
    });
    client.on('error', () => undefined);
    return {
      stop: () =>
        new Promise<void>((resolve) => {
          stopped = true;
          client.end(true, {}, () => resolve());
        }),
    };
  });
  let stopping: Promise<void> | null = null;
  return { stop: () => (stopping ??= Promise.all(clients.map((c) => c.stop())).then(() => undefined)) };
}
