import http from 'node:http';
import https from 'node:https';
import { gunzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import { decompress, Compression } from '../../protocol/compression.js';

/**
 * A stand-in OTLP backend for export tests, decoding what it receives with the OpenTelemetry JS project's generated
 * decoders (built from the official opentelemetry-proto files by @opentelemetry/otlp-transformer): an independent
 * reading of what the aggregator sends.
 */
const require = createRequire(import.meta.url);
const official: any = require('@opentelemetry/otlp-transformer/build/src/generated/root.js');
const collector = official.opentelemetry.proto.collector;
const TYPES: Record<string, any> = {
  metrics: collector.metrics.v1.ExportMetricsServiceRequest,
  logs: collector.logs.v1.ExportLogsServiceRequest,
  traces: collector.trace.v1.ExportTraceServiceRequest,
};
const toObject = { longs: String, enums: Number, bytes: String, defaults: false, oneofs: false };

export interface Received {
  signal: 'metrics' | 'logs' | 'traces';
  headers: Record<string, string | string[] | undefined>;
  /** The request as plain objects (camelCase, 64-bit integers as strings, bytes as base64). */
  request: any;
}

export function decodeOfficial(signal: string, bytes: Uint8Array): any {
  const T = TYPES[signal];
  return T.toObject(T.decode(bytes), toObject);
}

/** Gauge/sum values of a decoded metrics request: `<device.id or ->/<metric>` → values in order. */
export function pointsByMetric(requests: any[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const req of requests)
    for (const rm of req.resourceMetrics ?? []) {
      const dev = (rm.resource?.attributes ?? []).find((a: any) => a.key === 'device.id')?.value?.stringValue ?? '-';
      for (const sm of rm.scopeMetrics ?? [])
        for (const m of sm.metrics ?? [])
          for (const p of (m.gauge ?? m.sum)?.dataPoints ?? []) {
            const key = `${dev}/${m.name}`;
            let list = out.get(key);
            if (list === undefined) out.set(key, (list = []));
            list.push(p.asDouble ?? Number(p.asInt));
          }
    }
  return out;
}

export class OtlpHttpSink {
  readonly received: Received[] = [];
  /** Status to answer (200 = take it); a function may decide per request. */
  answer: (r: Received) => number = () => 200;
  private server: http.Server | null = null;
  port = 0;

  /** Listens on 127.0.0.1 (`tls`: over HTTPS with this certificate). */
  async start(port = 0, tls?: { cert: Buffer; key: Buffer }): Promise<void> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body = Buffer.concat(chunks);
        const enc = req.headers['content-encoding'];
        if (enc === 'gzip') body = gunzipSync(body);
        else if (enc === 'zstd') body = Buffer.from(decompress(body, Compression.ZSTD));
        const signal = (req.url ?? '').replace(/^.*\/v1\//, '') as Received['signal'];
        const r: Received = { signal, headers: req.headers, request: decodeOfficial(signal, body) };
        const status = this.answer(r);
        if (status === 200) this.received.push(r);
        res.writeHead(status, {
          'content-type': 'application/x-protobuf',
          ...(status === 503 ? { 'retry-after': '0' } : {}),
        });
        res.end();
      });
    };
    this.server = tls ? https.createServer(tls, handler) : http.createServer(handler);
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', () => resolve()));
    this.port = (this.server.address() as AddressInfo).port;
  }

  of(signal: Received['signal']): any[] {
    return this.received.filter((r) => r.signal === signal).map((r) => r.request);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

export class OtlpGrpcSink {
  readonly received: Received[] = [];
  private readonly server = new grpc.Server();
  port = 0;

  /** Listens on 127.0.0.1 (`tls`: with this certificate). */
  async start(tls?: { cert: Buffer; key: Buffer }): Promise<void> {
    const pass = (b: Buffer) => b;
    for (const [signal, service] of [
      ['metrics', 'opentelemetry.proto.collector.metrics.v1.MetricsService'],
      ['logs', 'opentelemetry.proto.collector.logs.v1.LogsService'],
      ['traces', 'opentelemetry.proto.collector.trace.v1.TraceService'],
    ] as const) {
      this.server.addService(
        {
          Export: {
            path: `/${service}/Export`,
            requestStream: false,
            responseStream: false,
            requestSerialize: pass,
            requestDeserialize: pass,
            responseSerialize: pass,
            responseDeserialize: pass,
          },
        } as grpc.ServiceDefinition,
        {
          Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
            this.received.push({
              signal,
              headers: call.metadata.getMap() as any,
              request: decodeOfficial(signal, call.request),
            });
            cb(null, Buffer.alloc(0));
          },
        },
      );
    }
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(
        '127.0.0.1:0',
        tls
          ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: tls.cert, private_key: tls.key }], false)
          : grpc.ServerCredentials.createInsecure(),
        (e, p) => (e ? reject(e) : resolve(p)),
      ),
    );
  }

  of(signal: Received['signal']): any[] {
    return this.received.filter((r) => r.signal === signal).map((r) => r.request);
  }

  async stop(): Promise<void> {
    this.server.forceShutdown();
  }
}
