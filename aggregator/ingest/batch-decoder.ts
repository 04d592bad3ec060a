import { SEQ_METRIC } from '../../protocol/otlp/semconv.js';
import { Signal } from '../../protocol/otlp/signal.js';
import { decompress, Compression } from '../../protocol/compression.js';
import { ProtoError, ProtoErrorCodes } from '../../protocol/errors.js';
import { visitLogsDeviceIds, visitMetricsRequest, type MetricsVisitor } from '../../protocol/otlp/visit.js';

import { isValidName } from '../../protocol/payload/shape.js';
import { ID_RULE, isValidId } from '../../protocol/ids.js';

import type { DeviceData } from '../device/types.js';
import { tenantOfResource } from '../tenants/stamp.js';

/**
 * Largest OTLP request one batch may inflate to, per signal. A 5,000-point metrics batch is ~350 KB of OTLP; logs
 * batches carry text bodies and are smaller in count. Both stay far above what agents send and far below what would
 * strain a node's memory.
 */
export const MAX_INFLATED_BYTES = { metrics: 32 << 20, logs: 16 << 20 } as const;
/**
 * Inflation ratio past which a payload is a bomb, not telemetry: agent batches inflate ~20× (OTLP + zstd), a highly
 * repetitive one under 100×; a 16 KB gzip of zeros inflating to 16 MiB is 1,000×. Payloads under 1 MiB inflated are
 * never refused for their ratio.
 */
export const MAX_INFLATION_RATIO = 200;
const RATIO_FLOOR_BYTES = 1 << 20;

/** The most `compressedBytes` of `signal` may inflate to. */
export function inflationLimit(signal: Signal, compressedBytes: number): number {
  const cap = signal === Signal.LOGS ? MAX_INFLATED_BYTES.logs : MAX_INFLATED_BYTES.metrics;
  return Math.min(cap, Math.max(RATIO_FLOOR_BYTES, compressedBytes * MAX_INFLATION_RATIO));
}

function badField(what: string): ProtoError {
  return new ProtoError(ProtoErrorCodes.BAD_FIELD, what);
}

/**
 * Metrics points → one DeviceData per device, as a MetricsVisitor (fed by visitMetricsRequest over OTLP bytes, or by
 * the uplink stream's column decoder). The seq gauge becomes the device's (ts, seq) pairs. Device ids and metric names
 * must follow the rules the agent applies (protocol/): the first that breaks them is kept as the error result()
 * throws, and the rest is ignored — the visitor itself never throws, so a stream decoder feeding it stays in step.
 */
export class DeviceDataCollector implements MetricsVisitor {
  private readonly byDevice = new Map<string, DeviceData>();
  private current: DeviceData | null = null;
  private checked = ''; // the last metric name found valid: points of one metric share its name
  private error: ProtoError | null = null;

  resource(id: string, resource: Uint8Array | null): void {
    this.current = id === '' || this.error !== null ? null : this.device(id);
    if (this.current !== null && resource !== null) {
      this.current.resource = resource;
      this.current.tenant = tenantOfResource(resource);
    }
  }

  /** The device's record, made on first sight (also for logs, whose devices were only heard from). */
  device(id: string): DeviceData | null {
    let d = this.byDevice.get(id);
    if (d === undefined) {
      if (!isValidId(id)) {
        this.error ??= badField(`device.id ${JSON.stringify(id.slice(0, 140))} is not a device id (${ID_RULE})`);
        return null;
      }
      this.byDevice.set(id, (d = { deviceId: id, metric: [], ts: [], value: [], seqTs: [], seq: [] }));
    }
    return d;
  }

  point(metric: string, ts: number, value: number): void {
    const d = this.current;
    if (d === null || this.error !== null) return; // a Resource without device.id is not a device
    if (metric === SEQ_METRIC) {
      d.seqTs.push(ts);
      d.seq.push(value);
      return;
    }
    if (metric !== this.checked) {
      if (!isValidName(metric)) {
        this.error = badField(
          `metric name ${JSON.stringify(metric.slice(0, 80))} (${metric.length} characters) of device '${d.deviceId}' breaks the rule: 1–255 printable characters`,
        );
        return;
      }
      this.checked = metric;
    }
    d.metric.push(metric);
    d.ts.push(ts);
    d.value.push(value);
  }

  /** The devices' data; throws the ProtoError of the first rule broken. */
  result(): DeviceData[] {
    if (this.error !== null) throw this.error;
    return [...this.byDevice.values()];
  }
}

/**
 * An uplink batch → one DeviceData per device. Metrics are walked with the allocation-free visitor. Logs only tell
 * that their devices were heard from, so only their resources are read (bodies are skipped by length). Throws
 * ProtoError for a payload that cannot be read or breaks a rule (the caller answers REJECTED: sending it again
 * cannot help).
 */
export function decodeBatch(signal: Signal, compression: Compression, payload: Uint8Array): DeviceData[] {
  return decodeRequest(signal, inflateBatch(signal, compression, payload));
}

/** A batch's OTLP request, inflated within the limits of its signal. */
export function inflateBatch(signal: Signal, compression: Compression, payload: Uint8Array): Uint8Array {
  return decompress(payload, compression, inflationLimit(signal, payload.length));
}

/** An inflated OTLP request → one DeviceData per device (see decodeBatch). */
export function decodeRequest(signal: Signal, raw: Uint8Array): DeviceData[] {
  const c = new DeviceDataCollector();
  if (signal === Signal.LOGS) {
    visitLogsDeviceIds(raw, (id, resource) => {
      if (id === '') return;
      const d = c.device(id);
      if (d !== null && resource !== null) {
        d.resource = resource;
        d.tenant = tenantOfResource(resource);
      }
    });
  } else visitMetricsRequest(raw, c);
  return c.result();
}
