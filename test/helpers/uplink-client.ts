import { Compression } from '../../protocol/compression.js';
import { Signal } from '../../protocol/otlp/signal.js';
import * as grpc from '@grpc/grpc-js';
import { MetricsEncoder } from '../../protocol/otlp/metrics-encoder.js';
import { uplinkServiceDefinition } from '../../protocol/uplink/service.js';
import { type UplinkAck, type UplinkBatch } from '../../protocol/uplink/messages.js';

const UplinkClient = grpc.makeGenericClientConstructor(
  uplinkServiceDefinition as unknown as grpc.ServiceDefinition,
  'Uplink',
);

/** An uncompressed OTLP metrics payload: `count` readings of `metrics` per device, seq firstSeq…, one second apart. */
export function metricsPayload(
  devices: string[],
  metrics: Record<string, number>,
  count = 1,
  startMs = Date.now() - 60_000,
  firstSeq = 1,
): Uint8Array {
  const names = Object.keys(metrics);
  const values = Object.values(metrics);
  return new MetricsEncoder({ gatewayId: 'test-gw' }).encode(
    devices.map((deviceId) => ({
      deviceId,
      readings: Array.from({ length: count }, (_, i) => ({
        ts: startMs + i * 1000,
        seq: firstSeq + i,
        names,
        values,
        attributes: null,
      })),
    })),
  );
}

/** Sends one uplink batch as an agent would (gRPC, optional bearer token); resolves with the ack or the gRPC error. */
export async function sendBatch(
  address: string,
  batch: Partial<UplinkBatch> & { payload: Uint8Array },
  token = '',
): Promise<{ ack?: UplinkAck; err?: grpc.ServiceError }> {
  const client = new UplinkClient(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Send: (
      b: UplinkBatch,
      md: grpc.Metadata,
      o: grpc.CallOptions,
      cb: (e: grpc.ServiceError | null, a?: UplinkAck) => void,
    ) => void;
  };
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  const full: UplinkBatch = {
    agentId: 'test-gw',
    seq: 1,
    signal: Signal.METRICS,
    compression: Compression.NONE,
    points: 0,
    ringVersion: 0,
    ...batch,
  };
  try {
    return await new Promise((resolve) =>
      client.Send(full, md, { deadline: Date.now() + 10_000 }, (err, ack) => resolve(err ? { err } : { ack })),
    );
  } finally {
    client.close();
  }
}
