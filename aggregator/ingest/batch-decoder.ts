import { SEQ_METRIC } from '../../protocol/otlp/semconv.js';
import { Signal } from '../../protocol/otlp/signal.js';
import { decompress, Compression } from '../../protocol/compression.js';
import { ProtoError, ProtoErrorCodes } from '../../protocol/errors.js';
import { visitLogsDeviceIds, visitMetricsRequest } from '../../protocol/otlp/visit.js';

import { isValidName } from '../../protocol/payload/shape.js';
import { ID_RULE, isValidId } from '../../protocol/ids.js';

import type { DeviceData } from '../device/types.js';

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

function badField(what: string): never {
  throw new ProtoError(ProtoErrorCodes.BAD_FIELD, what);
}

/**
 * An uplink batch → one DeviceData per device. Metrics are walked with the allocation-free visitor; the seq gauge
 * becomes the device's (ts, seq) pairs. Logs only tell that their devices were heard from, so only their resources
 * are read (bodies are skipped by length). Device ids and metric names must follow the rules the agent applies
 * (protocol/): a batch that breaks them came from a broken or hostile sender. Throws ProtoError for a payload that
 * cannot be read or breaks a rule (the caller answers REJECTED: sending it again cannot help).
 */
export function decodeBatch(signal: Signal, compression: Compression, payload: Uint8Array): DeviceData[] {
  const raw = decompress(payload, compression, inflationLimit(signal, payload.length));
  const byDevice = new Map<string, DeviceData>();
  const get = (id: string) => {
    let d = byDevice.get(id);
    if (d === undefined) {
      if (!isValidId(id)) badField(`device.id ${JSON.stringify(id.slice(0, 140))} is not a device id (${ID_RULE})`);
      byDevice.set(id, (d = { deviceId: id, metric: [], ts: [], value: [], seqTs: [], seq: [] }));
    }
    return d;
  };
  if (signal === Signal.LOGS) {
    visitLogsDeviceIds(raw, (id) => {
      if (id !== '') get(id);
    });
    return [...byDevice.values()];
  }
  let current: DeviceData | null = null;
  let checked = ''; // the last metric name found valid: points of one metric share its name
  visitMetricsRequest(raw, {
    resource: (id) => {
      current = id === '' ? null : get(id);
    },
    point: (metric, ts, value) => {
      const d = current;
      if (d === null) return; // a Resource without device.id is not a device: nothing to keep state for
      if (metric === SEQ_METRIC) {
        d.seqTs.push(ts);
        d.seq.push(value);
        return;
      }
      if (metric !== checked) {
        if (!isValidName(metric))
          badField(
            `metric name ${JSON.stringify(metric.slice(0, 80))} (${metric.length} characters) of device '${d.deviceId}' breaks the rule: 1–255 printable characters`,
          );
        checked = metric;
      }
      d.metric.push(metric);
      d.ts.push(ts);
      d.value.push(value);
    },
  });
  return [...byDevice.values()];
}
