import { Compression } from '../../../../protocol/compression.js';
import { Signal } from '../../../../protocol/otlp/signal.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { randomBytes } from 'node:crypto';
import { CircularBuffer } from '../../../../agent/buffer/circular-buffer.js';
import type { StoredBatch } from '../../../../agent/buffer/record.js';
import { UplinkSender } from '../../../../agent/uplink/sender.js';
import type { SendOptions, SendResult, UplinkTransport } from '../../../../agent/uplink/transport.js';
import { Backoff } from '../../../../runtime/retry/backoff.js';
import { retryAfter } from '../../../../agent/uplink/http-transport.js';
import { waitFor } from '../../../helpers/ports.js';
import { tempDir } from '../../../helpers/tmp.js';
import * as grpc from '@grpc/grpc-js';
import { GrpcUplinkTransport } from '../../../../agent/uplink/grpc-transport.js';
import { uplinkServiceDefinition } from '../../../../protocol/uplink/service.js';
import { AckStatus, type UplinkBatch } from '../../../../protocol/uplink/messages.js';

const silent = pino({ level: 'silent' });

/**
 * A receiver whose answers the test scripts: `answer(seqs, attempt)` decides each request's outcome (attempt counts
 * earlier requests that held the first of these seqs).
 */
class ScriptedTransport implements UplinkTransport {
  readonly target = 'scripted';
  readonly requests: { seqs: number[]; at: number; alone: boolean }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  constructor(
    private readonly answer: (seqs: number[], attempt: number) => SendResult,
    private readonly delayMs = 5,
  ) {}
  async send(batches: readonly StoredBatch[], opts: SendOptions): Promise<SendResult & { wireBytes: number }> {
    const seqs = batches.map((b) => b.seq);
    const attempt = this.requests.filter((r) => r.seqs.includes(seqs[0])).length;
    this.requests.push({ seqs, at: Date.now(), alone: opts.alone === true });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise((r) => setTimeout(r, this.delayMs));
    this.inFlight--;
    return { ...this.answer(seqs, attempt), wireBytes: batches.reduce((n, b) => n + b.payload.length, 0) };
  }
  async close() {}
  /** Every seq sent, in request order. */
  get sent(): number[] {
    return this.requests.flatMap((r) => r.seqs);
  }
}

async function filled(t: Parameters<typeof tempDir>[0], n: number, bytes = 100, createdMs?: number) {
  const buffer = await CircularBuffer.open({ dir: tempDir(t), maxBytes: 64 << 20, sync: false });
  for (let i = 0; i < n; i++)
    await buffer.append({
      signal: Signal.METRICS,
      compression: Compression.ZSTD,
      points: 10,
      payload: randomBytes(bytes),
      createdMs,
    });
  t.after(() => buffer.close());
  return buffer;
}

const seq = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test('stored batches go out oldest first, many per request, and are deleted only on OK', async (t) => {
  const buffer = await filled(t, 20);
  const transport = new ScriptedTransport(() => ({ kind: 'ok', ringVersion: 7 }));
  const versions: number[] = [];
  const sender = new UplinkSender(buffer, transport, { maxInFlight: 3, maxBytesPerSecond: 0 }, silent, {
    onRingVersion: (v) => versions.push(v),
  });
  sender.start();
  await waitFor('all delivered', () => buffer.stats().batches === 0);
  await sender.stop();
  assert.deepEqual(transport.sent, seq(1, 20));
  assert.equal(transport.requests.length, 1, 'the backlog went as one request');
  assert.equal(versions[0], 7);
});

test('requests are cut at the request limits and never more than max_in_flight are unanswered', async (t) => {
  const buffer = await filled(t, 20);
  const transport = new ScriptedTransport(() => ({ kind: 'ok', ringVersion: 0 }), 20);
  const sender = new UplinkSender(
    buffer,
    transport,
    { maxInFlight: 3, maxBytesPerSecond: 0, maxRequestBatches: 2 },
    silent,
  );
  sender.start();
  await waitFor('all delivered', () => buffer.stats().batches === 0);
  await sender.stop();
  assert.deepEqual(transport.sent, seq(1, 20));
  assert.ok(transport.requests.every((r) => r.seqs.length === 2));
  assert.equal(transport.maxInFlight, 3);
});

test('a lone batch waits max_delay from its commit for company, and not longer', async (t) => {
  const buffer = await filled(t, 0);
  const transport = new ScriptedTransport(() => ({ kind: 'ok', ringVersion: 0 }));
  const sender = new UplinkSender(buffer, transport, { maxInFlight: 4, maxBytesPerSecond: 0, maxDelayMs: 300 }, silent);
  sender.start();
  const committed = Date.now();
  await buffer.append({ signal: Signal.METRICS, compression: Compression.ZSTD, points: 1, payload: randomBytes(10) });
  sender.notify();
  await new Promise((r) => setTimeout(r, 100));
  // Batches committed meanwhile join the one waiting.
  for (let i = 0; i < 3; i++)
    await buffer.append({ signal: Signal.METRICS, compression: Compression.ZSTD, points: 1, payload: randomBytes(10) });
  sender.notify();
  await waitFor('delivered', () => buffer.stats().batches === 0, 5000);
  await sender.stop();
  assert.equal(transport.requests.length, 1);
  assert.deepEqual(transport.requests[0].seqs, [1, 2, 3, 4]);
  const waited = transport.requests[0].at - committed;
  assert.ok(waited >= 280 && waited < 600, `sent ${waited} ms after the first commit (max_delay 300 ms)`);
});

test("RETRY waits the receiver's retry-after; a receiver that is down is backed off; nothing is deleted meanwhile", async (t) => {
  const buffer = await filled(t, 2);
  const transport = new ScriptedTransport((seqs, attempt) => {
    if (attempt === 0) return { kind: 'retry', afterMs: 300, reason: 'busy' };
    if (attempt < 3) return { kind: 'failed', code: 'UNAVAILABLE', reason: 'down' };
    return { kind: 'ok', ringVersion: 0 };
  });
  const sender = new UplinkSender(buffer, transport, { maxInFlight: 2, maxBytesPerSecond: 0, maxDelayMs: 0 }, silent);
  sender.start();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(buffer.stats().batches, 2, 'no batch deleted before an OK');
  await waitFor('delivered after retries', () => buffer.stats().batches === 0, 10_000);
  await sender.stop();
  const [first, second] = transport.requests;
  assert.ok(second.at - first.at >= 290, `retry-after honoured (${second.at - first.at} ms)`);
  assert.equal(transport.requests.length, 4);
  assert.ok(
    transport.requests.every((r) => r.seqs.join() === '1,2'),
    'the same batches, oldest first, each time',
  );
});

test('REJECTED batches are moved aside, counted and kept, and never sent again; the rest of their request is delivered', async (t) => {
  const buffer = await filled(t, 3);
  const transport = new ScriptedTransport(() => ({
    kind: 'ok',
    ringVersion: 0,
    rejected: [{ seq: 2, reason: 'payload is not OTLP' }],
  }));
  const sender = new UplinkSender(buffer, transport, { maxInFlight: 1, maxBytesPerSecond: 0 }, silent);
  sender.start();
  await waitFor('queue empty', () => buffer.stats().batches === 0);
  await new Promise((r) => setTimeout(r, 50));
  await sender.stop();
  assert.deepEqual(transport.sent, [1, 2, 3]);
  const s = buffer.stats();
  assert.equal(s.rejectedBatches, 1);
  assert.equal(s.rejectedPoints, 10);
  assert.equal(s.quarantinedBatches, 1);
  const kept = [];
  for await (const b of buffer.rejected()) kept.push(b);
  assert.deepEqual(
    kept.map((b) => [b.seq, b.reason]),
    [[2, 'payload is not OTLP']],
  );
});

test('a request the receiver could not read is split: each of its batches goes alone, and only the bad one is set aside', async (t) => {
  const buffer = await filled(t, 3);
  const transport = new ScriptedTransport((seqs) => {
    if (seqs.length > 1) return { kind: 'split', reason: 'frame could not be read' };
    return seqs[0] === 2 ? { kind: 'rejected', reason: 'corrupt' } : { kind: 'ok', ringVersion: 0 };
  });
  const sender = new UplinkSender(buffer, transport, { maxInFlight: 2, maxBytesPerSecond: 0 }, silent);
  sender.start();
  await waitFor('queue empty', () => buffer.stats().batches === 0);
  await sender.stop();
  assert.deepEqual(transport.requests[0].seqs, [1, 2, 3]);
  const alone = transport.requests.slice(1);
  assert.deepEqual(alone.map((r) => r.seqs.join()).sort(), ['1', '2', '3']);
  assert.ok(
    alone.every((r) => r.alone),
    'sent alone, in the plainest form',
  );
  assert.equal(buffer.stats().rejectedBatches, 1);
});

test('the bandwidth cap spaces requests to max_bytes_per_second of bytes on the wire', async (t) => {
  const buffer = await filled(t, 6, 1000);
  const transport = new ScriptedTransport(() => ({ kind: 'ok', ringVersion: 0 }), 0);
  const sender = new UplinkSender(
    buffer,
    transport,
    { maxInFlight: 4, maxBytesPerSecond: 2000, maxRequestBatches: 1 },
    silent,
  );
  const start = Date.now();
  sender.start();
  await waitFor('delivered', () => buffer.stats().batches === 0, 10_000);
  await sender.stop();
  // 6 KB at 2 KB/s with a one-second burst: at least ~2 s.
  assert.ok(Date.now() - start >= 1800, `took ${Date.now() - start} ms`);
});

test('backoff grows exponentially to its ceiling, with jitter, and resets', () => {
  const mid = new Backoff(500, 30_000, () => 0.5);
  assert.deepEqual([mid.next(), mid.next(), mid.next()], [500, 1000, 2000]);
  for (let i = 0; i < 10; i++) mid.next();
  assert.equal(mid.next(), 30_000);
  mid.reset();
  assert.equal(mid.next(), 500);
  const low = new Backoff(500, 30_000, () => 0);
  assert.equal(low.next(), 400);
  const high = new Backoff(500, 30_000, () => 1);
  assert.equal(high.next(), 600);
});

test('Retry-After is read as seconds or an HTTP date', () => {
  assert.equal(retryAfter('3'), 3000);
  assert.equal(retryAfter(null), 1000);
  const inTwo = new Date(Date.now() + 2000).toUTCString();
  assert.ok(Math.abs(retryAfter(inTwo) - 2000) <= 1000);
  assert.equal(retryAfter('garbage'), 1000);
});

test("over gRPC every batch carries the buffer's low-water mark: a batch held for retry keeps it down until acknowledged", async (t) => {
  const seen: { seq: number; ackedBelow: number; bufferId: number }[] = [];
  let retries = 0;
  const server = new grpc.Server();
  server.addService(uplinkServiceDefinition as unknown as grpc.ServiceDefinition, {
    Send: (call: grpc.ServerUnaryCall<UplinkBatch, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const b = call.request;
      seen.push({ seq: b.seq, ackedBelow: b.ackedBelow ?? 0, bufferId: b.bufferId ?? 0 });
      // Batch 2 is answered RETRY three times while the others go through.
      if (b.seq === 2 && retries < 3) {
        retries++;
        return cb(null, { status: AckStatus.RETRY, retryAfterMs: 30, reason: 'busy', ringVersion: 0 });
      }
      cb(null, { status: AckStatus.OK, retryAfterMs: 0, reason: '', ringVersion: 0 });
    },
    GetRing: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { version: 0, vnodes: 0, members: [] }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  t.after(() => server.forceShutdown());
  const buffer = await filled(t, 12);
  const transport = new GrpcUplinkTransport({
    agentId: 'gw-lw',
    endpoints: [`127.0.0.1:${port}`],
    token: '',
    tls: { enabled: false, ca: '', insecureSkipVerify: false },
    lowWater: () => buffer.lowWater(),
    bufferId: buffer.stats().bufferId,
  });
  t.after(() => transport.close());
  const sender = new UplinkSender(buffer, transport, { maxInFlight: 2, maxBytesPerSecond: 0 }, silent);
  sender.start();
  await waitFor('all delivered', () => buffer.stats().batches === 0);
  await sender.stop();
  assert.equal(retries, 3);
  for (const s of seen)
    assert.ok(s.ackedBelow >= 1 && s.ackedBelow <= s.seq, `seq ${s.seq} carried acked_below ${s.ackedBelow}`);
  // While batch 2 waited for its retries, everything sent after it said so.
  const whileHeld = seen.filter((s) => s.seq > 2 && s.seq <= 4);
  assert.ok(whileHeld.length > 0 && whileHeld.every((s) => s.ackedBelow <= 2), JSON.stringify(seen));
  assert.equal(buffer.lowWater(), 13, 'nothing stored: the next seq');
  const id = buffer.stats().bufferId;
  assert.ok(id > 0 && seen.every((s) => s.bufferId === id), 'every batch names its buffer');
});

test('a buffer keeps its id across reopens; a new buffer (wiped data directory) gets another', async (t) => {
  const dir = tempDir(t);
  const first = await CircularBuffer.open({ dir, maxBytes: 1 << 20, sync: false });
  const id = first.stats().bufferId;
  await first.append({ signal: Signal.METRICS, compression: Compression.ZSTD, points: 1, payload: randomBytes(10) });
  await first.close();
  const again = await CircularBuffer.open({ dir, maxBytes: 1 << 20, sync: false });
  t.after(() => again.close());
  assert.equal(again.stats().bufferId, id);
  assert.ok(Number.isSafeInteger(id) && id > 0);
  const other = await CircularBuffer.open({ dir: tempDir(t), maxBytes: 1 << 20, sync: false });
  t.after(() => other.close());
  assert.notEqual(other.stats().bufferId, id);
});
