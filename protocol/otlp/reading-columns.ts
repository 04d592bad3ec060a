import type { Reading } from '../payload/types.js';

/**
 * Readings of many devices in columns: what the agent's batcher gathers until a commit and what the metrics encoder
 * reads. A reading kept as an object (with its names and values arrays) lives until its batch is written, hundreds
 * of milliseconds under a flood, so V8 copies it out of the young generation and marks it again in the old one; in
 * columns the decoded objects die young, and a batch is a dozen arrays kept from one batch to the next (`clear`
 * keeps their capacity: slots past the logical size are overwritten, never shrunk).
 */
export class ReadingColumns {
  /** Devices in order of their first reading. */
  readonly deviceIds: string[] = [];
  /** Per device: OTLP points (one per metric value, plus the seq gauge of each reading that has a seq). */
  readonly devicePoints: number[] = [];
  private readonly deviceIndex = new Map<string, number>();
  private devices = 0;

  // Per reading, in arrival order.
  readonly device: number[] = [];
  readonly ts: number[] = [];
  readonly seq: number[] = [];
  /** Where the reading's metrics start in `names` / `values`, and how many it has. */
  readonly start: number[] = [];
  readonly count: number[] = [];
  readonly attributes: (readonly string[] | null)[] = [];
  private readings = 0;

  // Per metric value.
  readonly names: string[] = [];
  readonly values: number[] = [];
  private metricValues = 0;

  /** OTLP points over all devices. */
  points = 0;

  /** Readings held. */
  get size(): number {
    return this.readings;
  }

  /** Devices held (`deviceIds[0 .. deviceCount)`). */
  get deviceCount(): number {
    return this.devices;
  }

  /** Appends a device's readings; returns the OTLP points they make. */
  add(deviceId: string, readings: readonly Reading[]): number {
    let d = this.deviceIndex.get(deviceId);
    if (d === undefined) {
      d = this.devices++;
      this.deviceIndex.set(deviceId, d);
      this.deviceIds[d] = deviceId;
      this.devicePoints[d] = 0;
    }
    let points = 0;
    for (const r of readings) {
      const i = this.readings++;
      const n = r.names.length;
      this.device[i] = d;
      this.ts[i] = r.ts;
      this.seq[i] = r.seq;
      this.start[i] = this.metricValues;
      this.count[i] = n;
      this.attributes[i] = r.attributes;
      for (let j = 0; j < n; j++) {
        const k = this.metricValues++;
        this.names[k] = r.names[j];
        this.values[k] = r.values[j];
      }
      points += n + (r.seq >= 0 ? 1 : 0);
    }
    this.devicePoints[d] += points;
    this.points += points;
    return points;
  }

  /** Empties the columns, keeping their capacity. */
  clear(): void {
    // Attribute lists are the only per-reading objects referenced; drop them so they are not kept past their batch.
    this.attributes.fill(null, 0, this.readings);
    this.deviceIndex.clear();
    this.devices = 0;
    this.readings = 0;
    this.metricValues = 0;
    this.points = 0;
  }

  /**
   * Reading indices grouped by device, devices in `deviceIds` order and each device's readings in arrival order:
   * device d's readings are `order[first[d]] … order[first[d + 1] - 1]`.
   */
  byDevice(): { order: Int32Array; first: Int32Array } {
    const first = new Int32Array(this.devices + 1);
    for (let i = 0; i < this.readings; i++) first[this.device[i] + 1]++;
    for (let d = 0; d < this.devices; d++) first[d + 1] += first[d];
    const next = first.slice(0, this.devices);
    const order = new Int32Array(this.readings);
    for (let i = 0; i < this.readings; i++) order[next[this.device[i]]++] = i;
    return { order, first };
  }
}
