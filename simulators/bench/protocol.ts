/**
 * `otlp-edge-sim bench protocol` (also `npm run bench:protocol`): the agent's and aggregator's hot paths in one
 * process — device payload decode, OTLP encode, zstd, OTLP decode, ring lookups — each beside a baseline measured
 * in the same run: protobufjs (a generic encoder) for OTLP encode, and OTLP protobuf + gzip for bytes on the wire.
 */
import protobuf from 'protobufjs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { MetricsEncoder } from '../../protocol/otlp/metrics-encoder.js';
import { decodeMetricsRequest } from '../../protocol/otlp/decode.js';
import { Compression, decompress, ZstdCompressor } from '../../protocol/compression.js';
import type { DeviceReadings, Reading } from '../../protocol/payload/types.js';
import { DeviceSignals } from '../fleet/signals.js';
import { benchPayloadDecode } from './payload.js';
import { benchRing } from './ring.js';
import { newReport, opsPerSecond, print, type BenchReport } from './report.js';

/** A batch as the agent forms it by default: 5,000 points, here 1,000 devices × one 5-metric reading. */
export function fleetBatch(
  devices: number,
  readingsPerDevice: number,
  startMs = 1732280000000,
  firstSeq = 0,
): { batch: DeviceReadings[]; points: number } {
  const batch: DeviceReadings[] = [];
  let points = 0;
  for (let d = 0; d < devices; d++) {
    const sig = new DeviceSignals(d + 1);
    sig.seq = firstSeq * readingsPerDevice;
    const readings: Reading[] = [];
    for (let i = 0; i < readingsPerDevice; i++) {
      const ts = startMs + i * 1000 + d;
      const v = sig.values(ts);
      readings.push({
        ts,
        seq: sig.seq++,
        names: ['temperature', 'humidity', 'battery', 'pulses', 'door_open'],
        values: [v.temperature, v.humidity, v.battery, v.pulses, v.door_open ? 1 : 0],
        attributes: null,
      });
      points += 6; // five metrics and the seq gauge
    }
    batch.push({ deviceId: `dev-${String(d).padStart(5, '0')}`, readings });
  }
  return { batch, points };
}

/** protobufjs's own encode of the same request, decoded once outside the timed loop. */
function protobufjsEncode(bytes: Uint8Array): () => Uint8Array {
  const root = new protobuf.Root();
  const dir = fileURLToPath(new URL('../../../protocol/proto/', import.meta.url));
  root.resolvePath = (_origin, target) => dir + target;
  root.loadSync('opentelemetry/proto/collector/metrics/v1/metrics_service.proto', { keepCase: false });
  const Req = root.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest');
  const msg = Req.decode(bytes);
  return () => Req.encode(msg).finish();
}

/** `quick`: each figure timed over 150 ms instead of 500 (a coarser figure, for `bench --quick`). */
export async function benchProtocol(quick = false): Promise<BenchReport> {
  const report = newReport('protocol');
  const rows = report.rows;
  const ms = quick ? 150 : 500;

  for (const row of benchPayloadDecode(quick ? 0.3 : 1)) rows.push(row);

  const enc = new MetricsEncoder({ gatewayId: 'gw-bench', attributes: { site: 'bench' } });
  for (const [devices, perDevice, label] of [
    [1000, 1, '1,000 devices x 1 reading'],
    [100, 10, '100 devices x 10 readings'],
  ] as const) {
    const { batch, points } = fleetBatch(devices, perDevice);
    const bytes = enc.encode(batch);
    const baseline = opsPerSecond(protobufjsEncode(bytes), points, ms);
    rows.push({
      name: `OTLP encode, ${label}`,
      value: opsPerSecond(() => enc.encode(batch), points, ms),
      unit: 'points/s',
      baseline: { name: 'protobufjs', value: baseline },
    });

    const zstd = new ZstdCompressor(3);
    const z = zstd.compress(bytes);
    const gz = gzipSync(bytes);
    rows.push({
      name: `zstd-3 compress, ${label}`,
      value: opsPerSecond(() => zstd.compress(bytes), points, ms),
      unit: 'points/s',
    });
    rows.push({
      name: `zstd decompress, ${label}`,
      value: opsPerSecond(() => decompress(z, Compression.ZSTD), points, ms),
      unit: 'points/s',
    });
    rows.push({
      name: `stored/uplinked size, ${label}`,
      value: z.length / points,
      unit: 'B/point',
      baseline: { name: 'OTLP+gzip', value: gz.length / points },
      // Not the wire's figure (the uplink codes batches against its stream's state): bench uplink judges that one.
      note: `raw OTLP ${(bytes.length / points).toFixed(1)} B/point`,
    });
    rows.push({
      name: `OTLP decode to JSON form, ${label}`,
      value: opsPerSecond(() => decodeMetricsRequest(bytes), points, ms),
      unit: 'points/s',
    });
  }

  for (const row of await benchRing()) rows.push(row);
  return report;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  print(await benchProtocol());
}
