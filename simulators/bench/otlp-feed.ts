import * as grpc from '@grpc/grpc-js';

const OTLP_METRICS_EXPORT = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';
const pass = (b: Buffer) => b;

/** One recorded batch as a standard OTLP request: over gRPC (gzip), or HTTP protobuf with zstd. */
export async function sendOtlp(
  how: 'grpc' | 'http',
  client: grpc.Client | null,
  httpPort: number,
  r: { payload: Uint8Array; otlp: Uint8Array },
): Promise<void> {
  if (how === 'http') {
    const res = await fetch(`http://127.0.0.1:${httpPort}/v1/metrics`, {
      method: 'POST',
      body: r.payload,
      headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'zstd' },
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`OTLP/HTTP answered ${res.status}`);
    return;
  }
  await new Promise<void>((resolve, reject) =>
    client!.makeUnaryRequest(
      OTLP_METRICS_EXPORT,
      pass,
      pass,
      Buffer.from(r.otlp),
      new grpc.Metadata(),
      { deadline: Date.now() + 30_000 },
      (err) => (err ? reject(err) : resolve()),
    ),
  );
}
