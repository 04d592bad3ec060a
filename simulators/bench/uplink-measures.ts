/**
 * What `bench uplink` measures with: a byte-counting TCP proxy for the link, quantiles from Prometheus histograms,
 * and the baselines — the readings a fleet published, priced as a stock OTLP exporter would send them.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { ZstdCompressor } from '../../protocol/compression.js';
import { MetricsEncoder, pointsOf } from '../../protocol/otlp/metrics-encoder.js';
import { decodeTelemetry } from '../../protocol/payload/decode.js';
import type { DeviceReadings, Reading } from '../../protocol/payload/types.js';
import { freeLoopbackPort } from './util.js';

/** A TCP proxy that counts the bytes each way. */
export async function countingProxy(
  target: number,
): Promise<{ port: number; up: () => number; down: () => number; close(): void }> {
  let up = 0;
  let down = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const server = connect(target, '127.0.0.1');
    sockets.add(client).add(server);
    client.on('data', (d) => {
      up += d.length;
      server.write(d);
    });
    server.on('data', (d) => {
      down += d.length;
      client.write(d);
    });
    const close = () => {
      client.destroy();
      server.destroy();
    };
    client.on('error', close).on('close', close);
    server.on('error', close).on('close', close);
  });
  const port = await freeLoopbackPort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    up: () => up,
    down: () => down,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** A quantile from the change of a Prometheus histogram between two scrapes (linear within a bucket). */
export function histogramQuantile(before: string, after: string, name: string, q: number): number {
  const buckets = (text: string) => {
    const out = new Map<number, number>();
    for (const line of text.split('\n')) {
      const m = line.match(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`));
      if (m) out.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
    }
    return out;
  };
  const b0 = buckets(before);
  const b1 = buckets(after);
  const les = [...b1.keys()].sort((a, b) => a - b);
  const counts = les.map((le) => (b1.get(le) ?? 0) - (b0.get(le) ?? 0));
  const total = counts[counts.length - 1] ?? 0;
  if (total === 0) return NaN;
  const rank = q * total;
  for (let i = 0; i < les.length; i++) {
    if (counts[i] >= rank) {
      const lo = i === 0 ? 0 : les[i - 1];
      const hi = les[i] === Infinity ? lo : les[i];
      const below = i === 0 ? 0 : counts[i - 1];
      const inBucket = counts[i] - below;
      return inBucket === 0 ? hi : lo + ((hi - lo) * (rank - below)) / inBucket;
    }
  }
  return les[les.length - 2] ?? NaN;
}

/** The readings the fleet published, priced in the encodings a stock exporter would use. */
export function baselines(
  gatewayId: string,
  published: { deviceId: string; payload: string | Buffer }[],
): Record<string, number> & { points: number } {
  const enc = new MetricsEncoder({ gatewayId });
  const zstd = new ZstdCompressor(3);
  const readings: { deviceId: string; r: Reading }[] = [];
  for (const p of published) {
    const bytes = typeof p.payload === 'string' ? Buffer.from(p.payload) : p.payload;
    for (const r of decodeTelemetry(bytes, { arrivalMs: Date.now() })) readings.push({ deviceId: p.deviceId, r });
  }
  const points = readings.reduce((n, x) => n + pointsOf(x.r), 0);
  /** Requests of about `size` points, readings in publish order, grouped by device inside each request. */
  const requests = (size: number): Uint8Array[] => {
    const out: Uint8Array[] = [];
    let group = new Map<string, Reading[]>();
    let n = 0;
    const flush = () => {
      if (n === 0) return;
      out.push(enc.encode([...group].map(([deviceId, rs]): DeviceReadings => ({ deviceId, readings: rs }))));
      group = new Map();
      n = 0;
    };
    for (const { deviceId, r } of readings) {
      const list = group.get(deviceId);
      if (list) list.push(r);
      else group.set(deviceId, [r]);
      n += pointsOf(r);
      if (n >= size) flush();
    }
    flush();
    return out;
  };
  const per = (reqs: Uint8Array[], f: (b: Uint8Array) => Uint8Array) =>
    reqs.reduce((s, b) => s + f(b).length, 0) / points;
  const small = requests(1000);
  const large = requests(8192);
  return {
    points,
    protobuf: per(small, (b) => b),
    gzip1000: per(small, (b) => gzipSync(b)),
    gzip8192: per(large, (b) => gzipSync(b)),
    zstd8192: per(large, (b) => zstd.compress(b)),
  };
}
