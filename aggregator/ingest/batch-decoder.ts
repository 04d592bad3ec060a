import { decompress, type CompressionName } from '../../protocol/compression.js';
import { visitMetricsRequest } from '../../protocol/otlp/visit.js';
import { decodeLogsRequest } from '../../protocol/otlp/decode.js';
import { SEQ_METRIC, ATTR_DEVICE_ID } from '../../protocol/otlp/options.js';
import { UplinkCompression, UplinkSignal } from '../../protocol/uplink/messages.js';
import type { DeviceData } from '../state/types.js';

/** Largest OTLP request one batch may inflate to (a 5,000-point batch is ~200 KB). */
export const MAX_INFLATED_BYTES = 64 * 1024 * 1024;

const COMPRESSION: Record<number, CompressionName> = {
  [UplinkCompression.NONE]: 'none',
  [UplinkCompression.ZSTD]: 'zstd',
  [UplinkCompression.GZIP]: 'gzip',
};

/**
 * An uplink batch → one DeviceData per device. Metrics are walked with the allocation-free visitor; the seq gauge
 * becomes the device's (ts, seq) pairs. Logs only tell that their devices were heard from. Throws ProtoError for a
 * payload that cannot be read (the caller answers REJECTED: sending it again cannot help).
 */
export function decodeBatch(signal: UplinkSignal, compression: UplinkCompression, payload: Uint8Array): DeviceData[] {
  const name = COMPRESSION[compression];
  const raw = decompress(payload, name ?? (String(compression) as CompressionName), MAX_INFLATED_BYTES);
  const byDevice = new Map<string, DeviceData>();
  const get = (id: string) => {
    let d = byDevice.get(id);
    if (d === undefined) byDevice.set(id, (d = { deviceId: id, metric: [], ts: [], value: [], seqTs: [], seq: [] }));
    return d;
  };
  if (signal === UplinkSignal.LOGS) {
    for (const rl of decodeLogsRequest(raw).resourceLogs) {
      const id = rl.resource?.attributes.find((a) => a.key === ATTR_DEVICE_ID)?.value.stringValue;
      if (id) get(id);
    }
    return [...byDevice.values()];
  }
  let current: DeviceData | null = null;
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
      } else {
        d.metric.push(metric);
        d.ts.push(ts);
        d.value.push(value);
      }
    },
  });
  return [...byDevice.values()];
}
