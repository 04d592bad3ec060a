import { ProtoWriter, Wire } from '../../protocol/otlp/writer.js';
import { writeStringKeyValue } from '../../protocol/otlp/resource.js';
import { ATTR_DEVICE_ID } from '../../protocol/otlp/semconv.js';
import { Signal } from '../../protocol/otlp/signal.js';
import { HEAD, HEAD_MINUTE, SLOT, type Device } from '../device/device-record.js';
import { copyBucket, MINUTE_MS } from '../device/rollups.js';
import type { Group } from '../state/group.js';
import type { ExportQueues } from './queue.js';

/** A closed 1-minute bucket: [min, max, sum, count, last, last ts]. */
export interface ClosedBucket {
  device: string;
  metric: string;
  minute: number;
  b: Float64Array;
}

/** Data points each bucket becomes: a summary (count, sum, min as quantile 0, max as quantile 1) and the last value. */
const POINTS_PER_BUCKET = 2;

/**
 * Export `mode: rollup`: each device metric's 1-minute buckets as OTLP metrics, once each minute is closed — when the
 * device's next minute begins (in the same write as that change), or, for a device gone quiet, at a sweep once the
 * minute ended `graceMs` ago. A bucket becomes a Summary named after the metric (count, sum, quantile 0 = min,
 * quantile 1 = max; start and time the minute's bounds) and a Gauge `<metric>.last` (the minute's last value, at its
 * time), on a Resource with the device's `device.id`. A late point for a minute already exported changes the API's
 * rollup, not what was exported. Which minutes went out is kept in memory: after a restart the heads of quiet
 * devices may be exported again (at least once).
 */
export class RollupExport {
  /** Per device, per metric slot: the newest minute exported. */
  private readonly marks = new WeakMap<Device, Float64Array>();

  constructor(
    private readonly queues: ExportQueues,
    private readonly graceMs = MINUTE_MS,
  ) {}

  private mark(dev: Device, slot: number, minute: number): boolean {
    let m = this.marks.get(dev);
    if (m === undefined || m.length <= slot) {
      const grown = new Float64Array(Math.max(dev.shape.length, slot + 1)).fill(-Infinity);
      if (m !== undefined) grown.set(m);
      this.marks.set(dev, (m = grown));
    }
    if (m[slot] >= minute) return false;
    m[slot] = minute;
    return true;
  }

  /** The head of `slot` is about to be replaced by a newer minute: its bucket goes with the group's write. */
  rolled(g: Group, dev: Device, slot: number, minute: number): void {
    if (!this.mark(dev, slot, minute)) return;
    g.rollups.push({ device: dev.id, metric: dev.shape.name(slot), minute, b: copyBucket(dev.m, slot * SLOT + HEAD) });
  }

  /** Heads whose minute ended at least graceMs before `nowMs` and were not exported: into the group. */
  sweep(g: Group, devices: Iterable<Device>, nowMs: number): number {
    const before = Math.floor((nowMs - this.graceMs) / MINUTE_MS); // minutes that ended by then
    let n = 0;
    for (const dev of devices) {
      for (let slot = 0; slot < dev.shape.length; slot++) {
        const minute = dev.m[slot * SLOT + HEAD_MINUTE];
        if (!(minute < before) || minute === -Infinity) continue;
        if (!this.mark(dev, slot, minute)) continue;
        g.rollups.push({
          device: dev.id,
          metric: dev.shape.name(slot),
          minute,
          b: copyBucket(dev.m, slot * SLOT + HEAD),
        });
        n++;
      }
    }
    return n;
  }

  /** The group's closed buckets as one request in the rollup queues (called as the group is cut). */
  cut(g: Group): void {
    if (g.rollups.length === 0) return;
    this.queues.enqueue(
      g,
      { signal: Signal.METRICS, otlp: encodeRollups(g.rollups), points: g.rollups.length * POINTS_PER_BUCKET },
      'rollup',
    );
    g.rollups.length = 0;
  }
}

/** Closed buckets → an ExportMetricsServiceRequest, one ResourceMetrics per device. */
export function encodeRollups(buckets: readonly ClosedBucket[]): Uint8Array {
  const byDevice = new Map<string, ClosedBucket[]>();
  for (const x of buckets) {
    const list = byDevice.get(x.device);
    if (list) list.push(x);
    else byDevice.set(x.device, [x]);
  }
  const w = new ProtoWriter(64 + buckets.length * 160);
  for (const [device, list] of byDevice) {
    w.fork(1); // ResourceMetrics
    w.fork(1); // Resource
    writeStringKeyValue(w, 1, ATTR_DEVICE_ID, device);
    w.join();
    w.fork(2); // ScopeMetrics
    w.fork(1);
    w.stringField(1, 'otlp-edge-aggregator/rollup');
    w.join();
    for (const x of list) {
      const [min, max, sum, count, last, lastTs] = x.b;
      const start = x.minute * MINUTE_MS;
      w.fork(2); // Metric: the summary
      w.stringField(1, x.metric);
      w.stringField(2, `1-minute rollup of ${x.metric}: count, sum, min (quantile 0), max (quantile 1)`);
      w.fork(11);
      w.fork(1);
      w.tag(2, Wire.FIXED64);
      w.timeFromMs(start);
      w.tag(3, Wire.FIXED64);
      w.timeFromMs(start + MINUTE_MS);
      w.tag(4, Wire.FIXED64);
      w.fixed64(Math.floor(count / 4294967296), count >>> 0);
      w.tag(5, Wire.FIXED64);
      w.double(sum);
      for (const [q, v] of [
        [0, min],
        [1, max],
      ]) {
        w.fork(6);
        w.tag(1, Wire.FIXED64);
        w.double(q);
        w.tag(2, Wire.FIXED64);
        w.double(v);
        w.join();
      }
      w.join();
      w.join();
      w.join();
      w.fork(2); // Metric: the last value
      w.stringField(1, `${x.metric}.last`);
      w.fork(5);
      w.fork(1);
      w.tag(3, Wire.FIXED64);
      w.timeFromMs(lastTs);
      w.tag(4, Wire.FIXED64);
      w.double(last);
      w.join();
      w.join();
      w.join();
    }
    w.join();
    w.join();
  }
  return w.finish();
}
