import { Signal } from '../../protocol/otlp/signal.js';
import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { MetricsEncoder } from '../../protocol/otlp/metrics-encoder.js';
import { ZstdCompressor, Compression } from '../../protocol/compression.js';
import { AckStatus, type UplinkAck } from '../../protocol/uplink/messages.js';
import type { DeviceReadings, Reading } from '../../protocol/payload/types.js';
import type { BatchId } from '../state/types.js';
import type { DeviceData } from '../device/types.js';
import type { BatchSink } from '../ingest/uplink-service.js';
import type { ExportItem } from '../export/queue.js';
import { joinEntries, resourceEntries, type ResourceEntry } from '../../protocol/otlp/split.js';
import type { ClusterMembership } from './cluster-membership.js';
import type { HashRing } from '../../protocol/ring/ring.js';

/** Devices whose owner the router remembers before it starts over (about 100 MB at most). */
const OWNERS_KEPT = 1_000_000;

export interface ForwardHooks {
  onForward?(points: number, bytes: number, ms: number): void;
}

/**
 * Routing of an uplink batch in a cluster: devices this node owns are applied here, the rest are split by owner
 * and forwarded over the peer service. The sender is answered OK only when every part is durable at its owner;
 * a part that cannot be placed fails the whole batch (the agent retries it; parts already applied are deduplicated
 * by (agent, seq) at their owners), so a batch is never partly acknowledged.
 */
export class ClusterRouter implements BatchSink {
  private readonly encoder = new MetricsEncoder({ gatewayId: 'forwarded' });
  private readonly zstd = new ZstdCompressor(3);
  /** Owner id per device under `ownersRing` (a lookup hashes the id five times; most devices come back every batch). */
  private owners = new Map<string, string>();
  private ownersRing: HashRing | null = null;

  constructor(
    private readonly cluster: ClusterMembership,
    private readonly local: BatchSink,
    private readonly hooks: ForwardHooks = {},
  ) {}

  async apply(
    batch: DeviceData[],
    dedup: BatchId | null,
    source?: ExportItem,
  ): Promise<{ duplicate: boolean; points: number }> {
    const ring = this.cluster.ring;
    const self = this.cluster.self.id;
    if (ring !== this.ownersRing || this.owners.size > OWNERS_KEPT) {
      this.owners = new Map();
      this.ownersRing = ring;
    }
    const parts = new Map<string, DeviceData[]>();
    for (const d of batch) {
      let owner = this.owners.get(d.deviceId);
      if (owner === undefined) this.owners.set(d.deviceId, (owner = ring.owner(d.deviceId).id));
      const list = parts.get(owner);
      if (list) list.push(d);
      else parts.set(owner, [d]);
    }
    const mine = parts.get(self);
    parts.delete(self);
    const owners = [...parts.keys()].sort();

    // A batch applied whole is deduplicated by (agent, seq). Once split, each part is keyed by (agent, seq, hash of
    // its device ids): a retry under a changed ring splits differently, and a part keyed by seq alone could be taken
    // for another part already applied and dropped. Where two tries' device sets overlap without being equal, the
    // per-device seq accounting keeps a reading from counting twice.
    const whole = owners.length === 0;
    // The source request is cut along its resources: each owner gets its devices' resources as they were sent
    // (attributes, scopes, every point), and resources without a device stay here with this node's part.
    let cut: Map<string, ExportItem> | null = null;
    if (source !== undefined && !whole) {
      cut = new Map();
      const byOwner = new Map<string, ResourceEntry[]>();
      for (const e of resourceEntries(source.signal, source.otlp)) {
        const owner = e.deviceId === '' ? self : (this.owners.get(e.deviceId) ?? self);
        const list = byOwner.get(owner);
        if (list) list.push(e);
        else byOwner.set(owner, [e]);
      }
      for (const [owner, entries] of byOwner)
        cut.set(owner, {
          signal: source.signal,
          otlp: joinEntries(source.otlp, entries),
          points: entries.reduce((n, e) => n + e.items, 0),
        });
    }
    const localSource = whole ? source : (cut?.get(self) ?? undefined);
    const results = await Promise.all([
      mine || localSource
        ? this.local.apply(
            mine ?? [],
            whole || dedup === null ? dedup : { ...dedup, part: deviceSetHash(mine ?? []) },
            localSource,
          )
        : Promise.resolve({ duplicate: false, points: 0 }),
      ...owners.map((owner, i) => this.forward(owner, parts.get(owner)!, dedup, i + 1, ring.version, cut?.get(owner))),
    ]);
    return { duplicate: results.every((r) => r.duplicate), points: results.reduce((n, r) => n + r.points, 0) };
  }

  private async forward(
    owner: string,
    data: DeviceData[],
    dedup: BatchId | null,
    part: number,
    ringVersion: number,
    source: ExportItem | undefined,
  ): Promise<{ duplicate: boolean; points: number }> {
    const client = this.cluster.clientOf(owner);
    if (client === null) throw new Error(`no connection to ring member '${owner}'`);
    // Without a source request (data read straight from stream columns), the part is encoded again from its data.
    const payload = this.zstd.compress(source?.otlp ?? this.encoder.encode(data.map(toReadings)));
    const points = data.reduce((n, d) => n + d.metric.length + d.seq.length, 0);
    const start = performance.now();
    const ack = await new Promise<UplinkAck>((resolve, reject) =>
      client.Forward(
        {
          // Data without a batch id (OTLP ingest) is applied at the owner without deduplication.
          originAgentId: dedup?.source ?? '',
          originSeq: dedup?.seq ?? 0,
          originAckedBelow: dedup?.ackedBelow ?? 0,
          originBufferId: dedup?.bufferId ?? 0,
          part,
          fromNode: this.cluster.self.id,
          signal: source?.signal ?? Signal.METRICS,
          compression: Compression.ZSTD,
          payload,
          points,
          ringVersion,
          deviceSetHash: deviceSetHash(data),
        },
        new grpc.Metadata(),
        { deadline: Date.now() + 10_000, waitForReady: true } as grpc.CallOptions,
        (err, res) => (err ? reject(new Error(`forward to '${owner}' failed: ${err.details}`)) : resolve(res)),
      ),
    );
    this.hooks.onForward?.(points, payload.length, performance.now() - start);
    if (ack.status !== AckStatus.OK)
      throw new Error(`owner '${owner}' answered ${AckStatus[ack.status]}: ${ack.reason}`);
    return { duplicate: ack.reason === 'duplicate', points };
  }
}

/**
 * The key of one owner's part of a split batch: the first 48 bits of SHA-256 over its device ids sorted (UTF-16
 * order) and joined by "\n" — exact in a JS number, and the same on every node, so a retry through another node
 * yields the same key.
 */
export function deviceSetHash(data: readonly DeviceData[]): number {
  const ids = data
    .map((d) => d.deviceId)
    .sort()
    .join('\n');
  return createHash('sha256').update(ids).digest().readUIntBE(0, 6);
}

/** DeviceData back to readings (one per distinct time) for re-encoding a forwarded part as OTLP. */
export function toReadings(d: DeviceData): DeviceReadings {
  const byTs = new Map<number, Reading>();
  const at = (ts: number) => {
    let r = byTs.get(ts);
    if (r === undefined) byTs.set(ts, (r = { ts, seq: -1, names: [], values: [], attributes: null }));
    return r;
  };
  for (let i = 0; i < d.seq.length; i++) at(d.seqTs[i]).seq = d.seq[i];
  for (let i = 0; i < d.metric.length; i++) {
    const r = at(d.ts[i]);
    r.names.push(d.metric[i]);
    r.values.push(d.value[i]);
  }
  return { deviceId: d.deviceId, readings: [...byTs.values()] };
}
