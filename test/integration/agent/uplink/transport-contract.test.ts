import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { Compression, decompress, ZstdCompressor } from '../../../../protocol/compression.js';
import { Signal } from '../../../../protocol/otlp/signal.js';
import { uplinkServiceDefinition } from '../../../../protocol/uplink/service.js';
import {
  AckStatus,
  type FrameAck,
  type UplinkAck,
  type UplinkBatch,
  type UplinkFrame,
} from '../../../../protocol/uplink/messages.js';
import { UplinkStreamDecoder } from '../../../../protocol/uplink/frame/stream.js';
import { GrpcUplinkTransport } from '../../../../agent/uplink/grpc-transport.js';
import { OtlpHttpTransport } from '../../../../agent/uplink/http-transport.js';
import type { StoredBatch } from '../../../../agent/buffer/record.js';
import { packBatches } from '../../../../agent/buffer/pack.js';
import type { UplinkTransport } from '../../../../agent/uplink/transport.js';
import { freePort, waitFor } from '../../../helpers/ports.js';

/**
 * One contract every uplink transport keeps, run against each (as MQTT.js runs one store suite for every store):
 * the requests arrive as encoded (a group of batches as one request where the receiver takes that; the gRPC
 * receiver here serves only Send, as an older aggregator does, so the transport falls back to one call per batch);
 * OK only when the receiver accepted; a receiver that proves the batch malformed →
 * rejected; refused credentials → failed (the backlog is kept); a retry-after is honoured; an unreachable receiver →
 * failed. A transport never throws.
 */

type Answer = 'ok' | 'malformed' | 'unauthenticated' | 'retry';

interface Receiver {
  transport: UplinkTransport;
  /** What the receiver answers to the next sends. */
  answer: Answer;
  /** Decompressed payloads received (accepted or not). */
  received: Uint8Array[];
  close(): Promise<void>;
}

const TOKEN = 'contract-token-0001';

async function grpcReceiver(): Promise<Receiver> {
  const r = { answer: 'ok' as Answer, received: [] as Uint8Array[] };
  const server = new grpc.Server();
  server.addService(
    uplinkServiceDefinition as unknown as grpc.ServiceDefinition,
    {
      Send: (call: grpc.ServerUnaryCall<UplinkBatch, UplinkAck>, cb: grpc.sendUnaryData<UplinkAck>) => {
        r.received.push(decompress(call.request.payload, call.request.compression));
        const ack = (status: AckStatus, reason = '', retryAfterMs = 0) =>
          cb(null, { status, reason, retryAfterMs, ringVersion: 7 });
        if (call.metadata.get('authorization')[0] !== `Bearer ${TOKEN}` || r.answer === 'unauthenticated') {
          return cb({ code: grpc.status.UNAUTHENTICATED, details: 'unknown token' } as grpc.ServiceError);
        }
        if (r.answer === 'malformed') return ack(AckStatus.REJECTED, 'OTLPEDGE_PROTO_MALFORMED: not OTLP');
        if (r.answer === 'retry') return ack(AckStatus.RETRY, 'busy', 1500);
        ack(AckStatus.OK);
      },
      GetRing: (_c: unknown, cb: grpc.sendUnaryData<object>) => cb(null, { version: 7, vnodes: 128, members: [] }),
    } as unknown as grpc.UntypedServiceImplementation,
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  const transport = new GrpcUplinkTransport({
    agentId: 'gw-contract',
    endpoints: [`127.0.0.1:${port}`],
    token: TOKEN,
    tls: { enabled: false, ca: '', insecureSkipVerify: false },
  });
  return Object.assign(r, {
    transport,
    close: async () => {
      await transport.close();
      server.forceShutdown();
    },
  });
}

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function httpReceiver(): Promise<Receiver> {
  const r = { answer: 'ok' as Answer, received: [] as Uint8Array[] };
  const server = createServer(async (req, res) => {
    const raw = await body(req);
    const enc = req.headers['content-encoding'];
    r.received.push(
      decompress(raw, enc === 'zstd' ? Compression.ZSTD : enc === 'gzip' ? Compression.GZIP : Compression.NONE),
    );
    if (req.headers.authorization !== `Bearer ${TOKEN}` || r.answer === 'unauthenticated')
      return res.writeHead(401).end();
    if (r.answer === 'malformed') return res.writeHead(400).end('not OTLP');
    if (r.answer === 'retry') return res.writeHead(503, { 'retry-after': '1.5' }).end();
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const transport = new OtlpHttpTransport({ endpoint: `http://127.0.0.1:${port}`, token: TOKEN });
  return Object.assign(r, {
    transport,
    close: async () => {
      await transport.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  });
}

const request = Buffer.from('an OTLP request, as the batcher encoded it');
const stored: StoredBatch = {
  seq: 1,
  route: '',
  signal: Signal.METRICS,
  compression: Compression.ZSTD,
  points: 3,
  createdMs: Date.now(),
  payload: new ZstdCompressor(3).compress(request),
};

for (const [name, make] of [
  ['gRPC uplink', grpcReceiver],
  ['OTLP/HTTP', httpReceiver],
] as const) {
  test(`${name} transport keeps the uplink contract: ok, rejected, failed, retry, unreachable`, async (t) => {
    const r = await make();
    t.after(() => r.close());

    const ok = await r.transport.send([stored], { deadlineMs: 5000 });
    assert.equal(ok.kind, 'ok');
    assert.deepEqual(Buffer.from(r.received[0]), request, 'the stored request arrives as it was encoded');

    r.answer = 'malformed';
    const rejected = await r.transport.send([stored], { deadlineMs: 5000 });
    assert.equal(rejected.kind, 'rejected', 'a batch the receiver proves malformed is set aside');

    r.answer = 'unauthenticated';
    const refused = await r.transport.send([stored], { deadlineMs: 5000 });
    assert.equal(refused.kind, 'failed', 'refused credentials keep the batch for a retry');

    r.answer = 'retry';
    const retry = await r.transport.send([stored], { deadlineMs: 5000 });
    assert.equal(retry.kind, 'retry');
    assert.equal(retry.kind === 'retry' && retry.afterMs, 1500, "the receiver's delay is honoured");

    // A group of batches is one request where the receiver takes it, and every batch arrives as encoded.
    r.answer = 'ok';
    r.received.length = 0;
    const second = Buffer.from('another OTLP request of the same signal');
    const group = await r.transport.send(
      [stored, { ...stored, seq: 2, payload: new ZstdCompressor(3).compress(second) }],
      { deadlineMs: 5000 },
    );
    assert.equal(group.kind, 'ok');
    assert.deepEqual(
      Buffer.concat(r.received.map((b) => Buffer.from(b))),
      Buffer.concat([request, second]),
      'both requests arrive, in order (one concatenated request over OTLP/HTTP, one Send each over gRPC)',
    );
    assert.ok(
      (group.wireBytes ?? 0) > 0,
      'the transport says how many bytes it put on the wire (for the bandwidth cap)',
    );

    // A packed record (an outage backlog) arrives as the requests it holds.
    r.received.length = 0;
    const packed = packBatches(
      [stored, { ...stored, seq: 2, payload: new ZstdCompressor(3).compress(second) }],
      new ZstdCompressor(3),
    );
    const fromPack = await r.transport.send([{ ...stored, ...packed, seq: 1, compression: Compression.ZSTD }], {
      deadlineMs: 5000,
    });
    assert.equal(fromPack.kind, 'ok');
    assert.deepEqual(Buffer.concat(r.received.map((b) => Buffer.from(b))), Buffer.concat([request, second]));

    const gone = await make();
    const port = await freePort(); // nothing listens here
    await gone.close();
    const unreachable =
      name === 'OTLP/HTTP'
        ? new OtlpHttpTransport({ endpoint: `http://127.0.0.1:${port}`, token: TOKEN })
        : new GrpcUplinkTransport({
            agentId: 'gw',
            endpoints: [`127.0.0.1:${port}`],
            token: TOKEN,
            tls: { enabled: false, ca: '', insecureSkipVerify: false },
          });
    t.after(() => unreachable.close());
    const failed = await unreachable.send([stored], { deadlineMs: 1500 });
    assert.equal(failed.kind, 'failed', 'an unreachable receiver is a failure to retry, not an exception');
  });
}

test('the gRPC transport renews its uplink stream after its lifetime, each new stream from a fresh state, and closes it when idle', async (t) => {
  let streams = 0;
  let ended = 0;
  const received: number[] = [];
  const server = new grpc.Server();
  server.addService(
    uplinkServiceDefinition as unknown as grpc.ServiceDefinition,
    {
      Stream: (call: grpc.ServerDuplexStream<UplinkFrame, FrameAck>) => {
        streams++;
        const decoder = new UplinkStreamDecoder(); // a new stream's frames decode only against a fresh state
        call.on('data', (f: UplinkFrame) => {
          for (const s of decoder.decode(f.payload, 1 << 20)) received.push(s.seq);
          call.write({
            frame: f.frame,
            status: AckStatus.OK,
            retryAfterMs: 0,
            reason: '',
            ringVersion: 0,
            rejected: [],
          });
        });
        call.on('end', () => {
          ended++;
          call.end();
        });
      },
    } as unknown as grpc.UntypedServiceImplementation,
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  t.after(() => server.forceShutdown());
  const transport = new GrpcUplinkTransport({
    agentId: 'gw-renew',
    endpoints: [`127.0.0.1:${port}`],
    token: '',
    tls: { enabled: false, ca: '', insecureSkipVerify: false },
    streamLifetimeMs: 150,
    streamIdleMs: 400,
  });
  t.after(() => transport.close());
  for (let seq = 1; seq <= 6; seq++) {
    const r = await transport.send([{ ...stored, seq }], { deadlineMs: 5000 });
    assert.equal(r.kind, 'ok');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.deepEqual(received, [1, 2, 3, 4, 5, 6]);
  assert.ok(streams >= 3, `${streams} streams for 6 frames 100 ms apart with a 150 ms lifetime`);
  // With nothing more to send, the last stream is closed too (its state freed at both ends).
  await waitFor('idle stream closed', () => ended === streams, 5000).catch((e: Error) => {
    throw new Error(`${e.message}: ${streams} streams, ${ended} ended`);
  });
});
