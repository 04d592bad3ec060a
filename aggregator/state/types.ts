import type { DeviceCounts, DeviceData } from '../device/types.js';
import type { Tier } from './tiers.js';
import type { DeviceRefusal } from '../tenants/device-tenants.js';
import type { ExportItem } from '../export/queue.js';
import type { ExportQueues } from '../export/queue.js';
import type { RollupExport } from '../export/rollup.js';
/**
 * The aggregator node's per-device state: what goes in (DeviceData, produced by the ingest from OTLP) and what
 * comes out (the shapes of aggregator/README.md "HTTP API", with times as epoch ms; the API turns them into RFC 3339).
 */

/** Identifies an uplink batch for deduplication: the agent's id and its per-agent batch seq. */
export interface BatchId {
  source: string;
  seq: number;
  /** The agent's low-water mark (UplinkBatch.acked_below): seqs below it will never be sent again; 0 = not said. */
  ackedBelow?: number;
  /** The agent's buffer id (UplinkBatch.buffer_id); a new one starts the dedup record over. 0 = not said. */
  bufferId?: number;
  /**
   * Set when this is one owner's part of a split batch (deviceSetHash of its devices, as the peer protocol carries
   * it): the part's devices are marked applied for this seq, not the seq itself.
   */
  part?: number;
}

export interface ApplyResult {
  /** The batch (source, seq) was applied before; nothing changed. */
  duplicate: boolean;
  /** Data points applied (points of duplicate readings and points with a non-finite value or negative ts are not). */
  points: number;
  /** Readings newly counted as received (distinct seqs, plus distinct ts of readings without a seq). */
  readings: number;
}

export interface DeviceSummary {
  id: string;
  online: boolean;
  /** Epoch ms (server time) when data from the device last arrived. */
  lastSeen: number;
}

export interface DeviceView extends DeviceSummary {
  /** Per metric, the point with the newest ts (not the last to arrive). */
  latest: Record<string, { value: number; ts: number }>;
  counts: DeviceCounts;
  /** Its Resource message as last received (decode with resourceAttributes), or null. */
  resource: Uint8Array | null;
}

export interface DeviceList {
  devices: DeviceSummary[];
  /** The last id of this page when more devices remain (pass it as `cursor`), else null. */
  next: string | null;
}

export interface SweepResult {
  wentOffline: string[];
  wentOnline: string[];
}

export interface DeviceStateOptions {
  /** Directory of the node's state LevelDB (created when missing). */
  dir: string;
  /** A device is online while its data last arrived less than this many ms ago (`devices.offline_after`). */
  offlineAfterMs: number;
  /** 1-minute rollups older than this many ms leave their tier at prune (`devices.rollup_retention`). */
  rollupRetentionMs: number;
  /** Coarser tiers expired buckets are rolled into, finest first (`devices.hourly_retention`, `…daily_retention`). */
  tiers?: readonly Tier[];
  /** fsync every write; default true. Only tests that do not test durability turn it off. */
  sync?: boolean;
  /** The clock (epoch ms) for last seen, online and retention; default Date.now. */
  now?: () => number;
  /** An agent's batches name a buffer other than the one recorded (its data directory was wiped): dedup starts over. */
  onNewBuffer?: (source: string, was: number, now: number) => void;
  /** The database could not be reopened after a failed write (it is retried with backoff). */
  onReopenFailure?: (err: Error, detail: string) => void;
  /** Distinct metric names kept per device (`devices.max_metrics`); default unlimited. */
  maxMetrics?: number;
  /** The exporters' durable queues, written in the same commits as the data they carry; none when absent. */
  exports?: ExportQueues;
  /** Export `mode: rollup`: closed buckets queued in the commits that close them. */
  rollups?: RollupExport;
  /**
   * A batch's effect is durable (not called for duplicates): the live stream publishes it. `source` is the OTLP
   * request it was read from, when there is one (a logs batch always has it).
   */
  onDurable?: (batch: readonly DeviceData[], source: ExportItem | undefined) => void;
  /** Points of a batch dropped because a device reached maxMetrics (`device` is the last such device). */
  onMetricsDropped?: (points: number, device: string) => void;
  /** A device's data not applied: it is another tenant's device, or its tenant is at its device quota. */
  onTenantRefused?: (reason: DeviceRefusal, tenant: string, device: string, points: number) => void;
  /** A tenant's device limit on this node (0 = none); absent = no device quotas (processors `quotas`). */
  deviceLimit?: (tenant: string) => number;
}
