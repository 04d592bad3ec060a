/** One device's data from one uplink batch. Parallel arrays, one entry per data point, in arrival order. */
export interface DeviceData {
  deviceId: string;
  /** Metric name of each point (the seq gauge `otlp_edge.device.seq` is not among them). */
  metric: string[];
  /** Epoch ms of each point (may carry a fraction). */
  ts: number[];
  value: number[];
  /** The device's readings that carried a seq: their ts and seq, parallel. A point belongs to the reading with the same ts. */
  seqTs: number[];
  seq: number[];
}

export interface DeviceCounts {
  /** Distinct readings (by seq; readings without seq count once per distinct time). */
  received: number;
  /** Readings whose seq had been seen before (not applied again). */
  duplicates: number;
  /** Gaps in seq not (yet) filled. */
  missing: number;
}

export interface DeviceView {
  id: string;
  online: boolean;
  /** Epoch ms (server time) when the device's data last arrived. */
  lastSeen: number;
  latest: Record<string, { value: number; ts: number }>;
  counts: DeviceCounts;
}

export interface RollupPoint {
  /** Bucket start, epoch ms. */
  start: number;
  min: number;
  max: number;
  sum: number;
  count: number;
  last: number;
}
