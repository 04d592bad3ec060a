import type { RingView } from '../cluster/membership.js';
import type { StoredEvent } from '../state/events.js';

/**
 * What the API reads, in the node's own units (epoch ms). A single node answers from its store; a cluster
 * (cluster/queries.ts) asks each device's owner. The API turns these into the JSON shapes of its contract.
 */

export interface DeviceSummary {
  id: string;
  online: boolean;
  lastSeen: number;
}
export interface DeviceDetail extends DeviceSummary {
  owner: string;
  latest: Record<string, { value: number; ts: number }>;
  counts: { received: number; duplicates: number; missing: number };
  /** The device's Resource message as last received, or null. */
  resource: Uint8Array | null;
}
export interface RollupView {
  start: number;
  min: number;
  max: number;
  sum: number;
  count: number;
  last: number;
}

/** A series as the owner answers it: its points and their resolution (minutes per point). */
export interface SeriesView {
  resolutionMin: number;
  points: RollupView[];
}

/** One node's totals over the devices it owns (GET /v1/fleet adds them up). */
export interface NodeSummary {
  nodeId: string;
  devices: number;
  online: number;
  received: number;
  duplicates: number;
  missing: number;
  readingsPerSecond: number;
  alertsFiring: number;
}

/** What a node answers from itself: its alerts (as the API shows them) and its totals. */
export interface LocalAnswers {
  alerts(): Record<string, unknown>[];
  summary(): NodeSummary;
}

/** The alerts of every member; `missing`: members that could not be asked. */
export interface AlertsView {
  alerts: Record<string, unknown>[];
  missing: string[];
}

/** Every member's summary (null for one that could not be asked) beside its place in the ring. */
export interface FleetView {
  ring: RingView;
  summaries: Map<string, NodeSummary | null>;
}

/** What the API reads; a cluster fills it by asking the owner of each device. */
export interface DeviceQueries {
  device(id: string): Promise<DeviceDetail | undefined>;
  /** `missing`: members that could not be asked (their devices are absent from this page). */
  list(opts: {
    online?: boolean;
    limit: number;
    cursor?: string;
    /** A case-insensitive part of the id. */
    match?: string;
    /** Only devices of this tenant ('' = in no tenant); absent: every device. */
    tenant?: string;
  }): Promise<{ devices: DeviceSummary[]; next: string | null; missing?: string[] }>;
  /** At the finest tier holding [fromMs, …), at least `atLeastMin` minutes per point; undefined: unknown device. */
  series(
    id: string,
    metric: string,
    fromMs: number,
    toMs: number,
    atLeastMin?: number,
  ): Promise<SeriesView | undefined>;
  /** The device's newest `limit` events, newest first; undefined for an unknown device. */
  events(id: string, limit: number): Promise<StoredEvent[] | undefined>;
  ring(): RingView;
  /** Active alerts of the whole cluster. */
  alerts(): Promise<AlertsView>;
  /** Totals of the whole cluster, member by member. */
  fleet(): Promise<FleetView>;
  /** Forgets a device on every member; the ids of the nodes that held state for it (empty: unknown device). */
  remove(id: string, requestedBy?: string): Promise<{ nodes: string[]; missing: string[] }>;
}
