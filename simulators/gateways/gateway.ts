import { randomInt } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { Compression, ZstdCompressor } from '../../protocol/compression.js';
import { MetricsEncoder } from '../../protocol/otlp/metrics-encoder.js';
import { Signal } from '../../protocol/otlp/signal.js';
import type { DeviceReadings } from '../../protocol/payload/types.js';
import { HashRing } from '../../protocol/ring/ring.js';
import { uplinkServiceDefinition } from '../../protocol/uplink/service.js';
import { AckStatus, type RingInfo, type UplinkAck, type UplinkBatch } from '../../protocol/uplink/messages.js';
import { DeviceSignals } from '../fleet/signals.js';

const UplinkClient = grpc.makeGenericClientConstructor(
  uplinkServiceDefinition as unknown as grpc.ServiceDefinition,
  'Uplink',
);
type Stub = grpc.Client & {
  Send(
    b: UplinkBatch,
    md: grpc.Metadata,
    o: grpc.CallOptions,
    cb: (e: grpc.ServiceError | null, a?: UplinkAck) => void,
  ): void;
  GetRing(
    r: object,
    md: grpc.Metadata,
    o: grpc.CallOptions,
    cb: (e: grpc.ServiceError | null, a?: RingInfo) => void,
  ): void;
};

const METRICS = ['temperature', 'humidity', 'battery', 'pulses', 'door_open'];
/** Points a reading carries: its metrics and the seq gauge. */
export const POINTS_PER_READING = METRICS.length + 1;
const DEADLINE_MS = 30_000;
const RETRY_MS = 500;

/** What every gateway of one run shares: the channels to each address and the ring the aggregators gave. */
export class Uplinks {
  private readonly clients = new Map<string, Stub>();
  private ring: HashRing | null = null;
  private refreshing: Promise<void> | null = null;
  private lastRefresh = 0;

  /**
   * @param seeds aggregator addresses (HOST:PORT) to learn the ring from
   * @param ownConnections one HTTP/2 connection per gateway (as real agents have) instead of one per address
   * @param token a gateway's token, for asking the ring (GetRing needs an agent's credential like Send)
   */
  constructor(
    readonly seeds: string[],
    private readonly credentials: grpc.ChannelCredentials,
    private readonly ownConnections: boolean,
    token: string,
  ) {
    if (token) this.metadata.set('authorization', `Bearer ${token}`);
  }

  private readonly metadata = new grpc.Metadata();
  /** Why the ring could not be learned the last time (null: it was). */
  ringError: string | null = null;

  get version(): number {
    return this.ring?.version ?? 0;
  }

  /** The address that owns `deviceId` ('' until a ring of more than one member is known: any seed). */
  route(deviceId: string): string {
    return this.ring !== null && this.ring.size > 1 ? this.ring.owner(deviceId).address : '';
  }

  client(address: string, gateway: string): Stub {
    const key = this.ownConnections ? `${gateway}\u0000${address}` : address;
    let c = this.clients.get(key);
    if (c === undefined) {
      const opts = this.ownConnections ? { 'grpc.use_local_subchannel_pool': 1 } : {};
      this.clients.set(key, (c = new UplinkClient(address, this.credentials, opts) as unknown as Stub));
    }
    return c;
  }

  /** An ack said ring `version`: learn the ring again when it differs (at most once a second). */
  noteVersion(version: number): void {
    if (version !== 0 && version !== this.version && Date.now() - this.lastRefresh >= 1000) void this.refresh();
  }

  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      this.lastRefresh = Date.now();
      for (const seed of this.seeds) {
        const info = await new Promise<RingInfo | null>((resolve) =>
          this.client(seed, '').GetRing({}, this.metadata, { deadline: Date.now() + 5000 }, (e, r) => {
            if (e) this.ringError = `${seed}: ${e.details || e.message}`;
            resolve(e ? null : (r ?? null));
          }),
        );
        if (info === null || info.members.length === 0) continue;
        const members = info.members.filter((m) => m.healthy).map((m) => ({ id: m.id, address: m.address }));
        if (members.length > 0) this.ring = new HashRing(members, info.vnodes || undefined);
        this.ringError = null;
        return;
      }
    })().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
  }
}

export interface GatewayCounts {
  /** Readings made (each a device's seq). */
  readings: number;
  /** Batches sent and answered OK, and the readings they held. */
  batches: number;
  ackedReadings: number;
  /** Answers RETRY and gRPC errors (the batch is sent again with its seq). */
  retries: number;
  /** Batches refused for good (REJECTED), and readings dropped because too many batches waited. */
  rejected: number;
  dropped: number;
  /** Batches waiting or in flight. */
  backlog: number;
}

interface Pending {
  seq: number;
  address: string;
  payload: Uint8Array;
  readings: number;
  points: number;
  /** The per-device seqs it holds, for the accounting: device index → [first, last]. */
  devices: [number, number, number][];
}

export interface GatewayOptions {
  agentId: string;
  token: string;
  /** Devices behind it; ids `<agentId>-dev-00000`… */
  devices: number;
  /** Readings per second per device. */
  rate: number;
  /** How often it commits a batch (the agent's batch.max_delay), ms. */
  intervalMs: number;
  maxInFlight: number;
  /** Batches kept waiting at most; past it the oldest are dropped and counted (the agent's buffer cap). */
  maxQueued: number;
}

/**
 * One simulated agent on the uplink: its own agent id, token and buffer id, a monotonic seq per stored batch, the
 * low-water mark of what is acknowledged, and a device population whose readings (the simulated fleet's values, seq
 * and ts per device) are encoded by the agent's OTLP encoder, split by owner like a ring-aware agent, compressed
 * with zstd and sent with Send, retried with the same seq until acknowledged.
 */
export class SimulatedGateway {
  readonly counts: GatewayCounts = {
    readings: 0,
    batches: 0,
    ackedReadings: 0,
    retries: 0,
    rejected: 0,
    dropped: 0,
    backlog: 0,
  };
  /** Per device: readings acknowledged (each seq once, whatever the retries). */
  readonly acked: Uint32Array;
  private readonly signals: DeviceSignals[];
  private readonly bufferId = randomInt(1, 2 ** 31);
  private readonly encoder: MetricsEncoder;
  private readonly queue: Pending[] = [];
  private readonly unacked = new Set<number>();
  private seq = 0;
  private inFlight = 0;
  /** Batches waiting out a retry delay. */
  private retrying = 0;
  private carry = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly metadata = new grpc.Metadata();

  constructor(
    private readonly o: GatewayOptions,
    private readonly uplinks: Uplinks,
    private readonly zstd: ZstdCompressor,
  ) {
    this.signals = Array.from({ length: o.devices }, (_, i) => new DeviceSignals(i + 1));
    this.acked = new Uint32Array(o.devices);
    this.encoder = new MetricsEncoder({ gatewayId: o.agentId });
    if (o.token) this.metadata.set('authorization', `Bearer ${o.token}`);
  }

  deviceId(i: number): string {
    return `${this.o.agentId}-dev-${String(i).padStart(5, '0')}`;
  }

  /** Starts committing a batch every intervalMs, after `delayMs` (gateways of a run start spread out). */
  start(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = setInterval(() => this.commit(), this.o.intervalMs);
      this.commit();
    }, delayMs);
  }

  /** Stops making readings; resolves once what was made is acknowledged or `graceMs` passed. */
  async stop(graceMs: number): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    const until = Date.now() + graceMs;
    while (this.queue.length + this.inFlight + this.retrying > 0 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 50));
    this.stopped = true;
  }

  /** One commit: every device's readings since the last, one batch per owner. */
  private commit(): void {
    this.carry += (this.o.rate * this.o.intervalMs) / 1000;
    const per = Math.floor(this.carry);
    if (per === 0) return;
    this.carry -= per;
    const now = Date.now();
    const parts = new Map<string, { batch: DeviceReadings[]; devices: [number, number, number][] }>();
    for (let d = 0; d < this.o.devices; d++) {
      const sig = this.signals[d];
      const id = this.deviceId(d);
      const readings = [];
      const first = sig.seq;
      for (let k = 0; k < per; k++) {
        const ts = now - Math.round(((per - 1 - k) * 1000) / this.o.rate);
        const v = sig.values(ts);
        readings.push({
          ts,
          seq: sig.seq++,
          names: METRICS,
          values: [v.temperature, v.humidity, v.battery, v.pulses, v.door_open ? 1 : 0],
          attributes: null,
        });
      }
      const address = this.uplinks.route(id);
      let part = parts.get(address);
      if (part === undefined) parts.set(address, (part = { batch: [], devices: [] }));
      part.batch.push({ deviceId: id, readings });
      part.devices.push([d, first, sig.seq - 1]);
    }
    for (const [address, part] of parts) {
      const readings = part.batch.length * per;
      this.counts.readings += readings;
      const payload = this.zstd.compress(this.encoder.encode(part.batch));
      this.queue.push({
        seq: ++this.seq,
        address,
        payload,
        readings,
        points: readings * POINTS_PER_READING,
        devices: part.devices,
      });
      this.unacked.add(this.seq);
    }
    while (this.queue.length > this.o.maxQueued) {
      const old = this.queue.shift()!;
      this.unacked.delete(old.seq);
      this.counts.dropped += old.readings;
    }
    this.pump();
  }

  private pump(): void {
    this.counts.backlog = this.queue.length + this.inFlight + this.retrying;
    while (!this.stopped && this.inFlight < this.o.maxInFlight && this.queue.length > 0) {
      const p = this.queue.shift()!;
      this.inFlight++;
      this.send(p);
    }
  }

  private send(p: Pending): void {
    const address = p.address || this.uplinks.seeds[p.seq % this.uplinks.seeds.length];
    let low = this.seq + 1;
    for (const s of this.unacked) if (s < low) low = s;
    const batch: UplinkBatch = {
      agentId: this.o.agentId,
      seq: p.seq,
      signal: Signal.METRICS,
      compression: Compression.ZSTD,
      payload: p.payload,
      points: p.points,
      ringVersion: this.uplinks.version,
      ackedBelow: low,
      bufferId: this.bufferId,
    };
    this.uplinks
      .client(address, this.o.agentId)
      .Send(batch, this.metadata, { deadline: Date.now() + DEADLINE_MS }, (err, ack) => {
        this.inFlight--;
        if (!err && ack) this.uplinks.noteVersion(ack.ringVersion);
        if (!err && ack?.status === AckStatus.OK) {
          this.unacked.delete(p.seq);
          this.counts.batches++;
          this.counts.ackedReadings += p.readings;
          for (const [d, first, last] of p.devices) this.acked[d] += last - first + 1;
        } else if (!err && ack?.status === AckStatus.REJECTED) {
          this.unacked.delete(p.seq);
          this.counts.rejected++;
        } else {
          // RETRY, or no answer: the same seq again later (the node deduplicates what it already stored).
          this.counts.retries++;
          const wait = ack?.retryAfterMs || RETRY_MS;
          this.retrying++;
          setTimeout(() => {
            this.retrying--;
            this.queue.unshift(p);
            this.pump();
          }, wait).unref();
          this.counts.backlog = this.queue.length + this.inFlight + this.retrying;
          return;
        }
        this.pump();
      });
  }
}
