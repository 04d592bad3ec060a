import type { RingView } from '../cluster/membership.js';

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
}
export interface RollupView {
  start: number;
  min: number;
  max: number;
  sum: number;
  count: number;
  last: number;
}

/** What the API reads; a cluster fills it by asking the owner of each device. */
export interface DeviceQueries {
  device(id: string): Promise<DeviceDetail | undefined>;
  /** `missing`: members that could not be asked (their devices are absent from this page). */
  list(opts: {
    online?: boolean;
    limit: number;
    cursor?: string;
  }): Promise<{ devices: DeviceSummary[]; next: string | null; missing?: string[] }>;
  series(id: string, metric: string, fromMs: number, toMs: number): Promise<RollupView[] | undefined>;
  ring(): RingView;
  /** Forgets a device on every member; the ids of the nodes that held state for it (empty: unknown device). */
  remove(id: string, requestedBy?: string): Promise<{ nodes: string[]; missing: string[] }>;
}
