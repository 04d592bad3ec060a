/** The device model's data: what one batch brings for one device, and what the model counts and rolls up. */

/** One device's data from one uplink batch. Parallel arrays, one entry per data point, in arrival order. */
export interface DeviceData {
  deviceId: string;
  metric: string[]; // metric name of each point (the seq gauge `otlp_edge.device.seq` is NOT among them)
  ts: number[]; // epoch ms of each point (may carry a fraction)
  value: number[];
  /**
   * The device's readings that carried a seq: their ts and seq, parallel. A point belongs to the reading with the
   * same ts.
   */
  seqTs: number[];
  seq: number[];
  /**
   * The device's Resource message as this batch sent it (its attributes: gateway, site, firmware…); a view into the
   * request, copied by the store when it differs from what the device had. Absent or null: the batch did not say.
   */
  resource?: Uint8Array | null;
  /**
   * The tenant the data belongs to ('' = none), from the sender's token where it entered the cluster (and from the
   * stamped Resource on an owner it was forwarded to).
   */
  tenant?: string;
}

export interface DeviceCounts {
  /** Distinct readings, by seq; readings without a seq count once per distinct ts in a batch. */
  received: number;
  /** Readings whose seq was seen before (their points are not applied). */
  duplicates: number;
  /** Gaps in seq not (yet) filled. */
  missing: number;
}

/** One 1-minute rollup bucket; `start` is the bucket's first epoch ms. */
export interface RollupPoint {
  start: number;
  min: number;
  max: number;
  sum: number;
  count: number;
  /** Value of the point with the newest ts in the bucket. */
  last: number;
}
