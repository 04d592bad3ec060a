import { reading } from '../../../helpers/readings.js';
import { Signal } from '../../../../protocol/otlp/signal.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher, type CommitInfo } from '../../../../agent/buffer/batcher.js';
import { CircularBuffer } from '../../../../agent/buffer/circular-buffer.js';
import { MetricsEncoder } from '../../../../protocol/otlp/metrics-encoder.js';
import { LogsEncoder } from '../../../../protocol/otlp/logs-encoder.js';
import { Compression, decompress, ZstdCompressor } from '../../../../protocol/compression.js';
import { decodeLogsRequest, decodeMetricsRequest } from '../../../../protocol/otlp/decode.js';
import type { Reading } from '../../../../protocol/payload/types.js';
import { tempDir } from '../../../helpers/tmp.js';

async function setup(t: Parameters<typeof tempDir>[0], maxDelayMs = 200, maxPoints = 5000) {
  const buffer = await CircularBuffer.open({ dir: tempDir(t), maxBytes: 64 << 20 });
  const commits: CommitInfo[] = [];
  const batcher = new Batcher(
    { maxDelayMs, maxPoints },
    new MetricsEncoder({ gatewayId: 'gw' }),
    new LogsEncoder({ gatewayId: 'gw' }),
    new ZstdCompressor(3),
    buffer,
    {
      onCommit: (c) => commits.push(c),
    },
  );
  t.after(async () => {
    batcher.stop();
    await buffer.close();
  });
  return { buffer, batcher, commits };
}

const temp = (seq: number): Reading => reading(1732280000000 + seq, seq, { temp: 20 + seq / 10 });

test('an acknowledgement waits until its reading is on disk', async (t) => {
  const { buffer, batcher } = await setup(t);
  let storedAtAck = -1;
  const acked = new Promise<void>((resolve, reject) => {
    batcher.addReadings('dev-1', [temp(5)], (err) => {
      if (err) return reject(err);
      storedAtAck = buffer.stats().batches;
      resolve();
    });
  });
  assert.equal(buffer.stats().batches, 0, 'nothing is stored synchronously');
  await acked;
  assert.equal(storedAtAck, 1, 'the batch was stored before the ack');
  const stored = await buffer.read(10);
  const req = decodeMetricsRequest(decompress(stored[0].payload, Compression.ZSTD));
  assert.equal(req.resourceMetrics[0].scopeMetrics[0].metrics[0].gauge!.dataPoints[0].asDouble, 20.5);
});

test('group commit: 1,000 waiting acks from one device take a handful of writes, not 1,000', async (t) => {
  const { buffer, batcher, commits } = await setup(t, 200);
  const acked: number[] = [];
  const all: Promise<void>[] = [];
  // Arrive in 10 socket reads of 100 messages, as a device with 100 in flight would send them.
  for (let chunk = 0; chunk < 10; chunk++) {
    for (let i = 0; i < 100; i++) {
      const seq = chunk * 100 + i;
      all.push(
        new Promise((resolve, reject) =>
          batcher.addReadings('dev-1', [temp(seq)], (err) => (err ? reject(err) : (acked.push(seq), resolve()))),
        ),
      );
    }
    await new Promise((r) => setImmediate(r));
  }
  const start = Date.now();
  await Promise.all(all);
  assert.equal(acked.length, 1000);
  assert.ok(commits.length <= 20, `${commits.length} commits`);
  assert.ok(Date.now() - start < 200 * 5, 'acks do not wait for the batch delay');
  assert.equal(buffer.stats().points, 2000, 'temp + seq gauge per reading');
});

test('best-effort (QoS 0) readings wait for max_delay or max_points', async (t) => {
  const { buffer, batcher, commits } = await setup(t, 100, 50);
  for (let i = 0; i < 10; i++) batcher.addReadings(`dev-${i}`, [temp(i)], null);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(commits.length, 0, 'below max_points and before max_delay nothing is written');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(commits.length, 1);
  assert.equal(commits[0].points, 20);
  for (let i = 0; i < 30; i++) batcher.addReadings('dev-x', [temp(i)], null); // 60 points ≥ 50
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(commits.length, 2, 'max_points commits without waiting for the delay');
  assert.equal(buffer.stats().batches, 2);
});

test('events are stored as a separate logs batch in the same commit', async (t) => {
  const { buffer, batcher } = await setup(t);
  batcher.addEvents(
    'dev-1',
    [{ ts: 1732280000000, severityNumber: 13, severityText: 'warn', body: 'door open', attributes: null }],
    null,
  );
  batcher.addReadings('dev-1', [temp(1)], null);
  await batcher.flush();
  const stored = await buffer.read(10);
  assert.deepEqual(stored.map((b) => b.signal).sort(), [Signal.METRICS, Signal.LOGS]);
  const logs = stored.find((b) => b.signal === Signal.LOGS)!;
  const req = decodeLogsRequest(decompress(logs.payload, Compression.ZSTD));
  assert.equal(req.resourceLogs[0].scopeLogs[0].logRecords[0].body?.stringValue, 'door open');
});

test('a failed write fails its waiters instead of acknowledging them', async (t) => {
  const { buffer, batcher } = await setup(t);
  await buffer.close();
  const err = await new Promise<Error | undefined>((resolve) => batcher.addReadings('dev-1', [temp(1)], resolve));
  assert.ok(err instanceof Error);
});

test('what piles up while a write is on disk is stored as batches of about max_points, not one huge batch', async (t) => {
  const { buffer, batcher } = await setup(t, 50, 100);
  // 200 devices × 2 points = 400 points arrive at once with no write in between.
  for (let d = 0; d < 200; d++) batcher.addReadings(`dev-${d}`, [temp(d)], null);
  await batcher.flush();
  const stored = await buffer.read(100);
  assert.ok(stored.length >= 4, `${stored.length} batches`);
  assert.ok(
    stored.every((b) => b.points <= 100 + 2),
    `batch sizes ${stored.map((b) => b.points).join(', ')}`,
  );
  assert.equal(
    stored.reduce((n, b) => n + b.points, 0),
    400,
  );
});

test('a commit of many parts encodes one part per event-loop turn, so device input is served between them', async (t) => {
  const { buffer, batcher } = await setup(t, 50, 100);
  const compressor = (batcher as unknown as { compressor: ZstdCompressor }).compressor;
  const compress = compressor.compress.bind(compressor);
  let encoded = 0;
  compressor.compress = (b) => (encoded++, compress(b));
  for (let d = 0; d < 200; d++) batcher.addReadings(`dev-${d}`, [temp(d)], null);
  // What a socket read queued behind the commit would see: how many parts were encoded before it ran.
  const seen: number[] = [];
  const flushed = batcher.flush();
  const watch = (): void => {
    seen.push(encoded);
    if (encoded < 4) setImmediate(watch);
  };
  setImmediate(watch);
  await flushed;
  assert.ok(encoded >= 4, `${encoded} parts`);
  assert.ok(
    seen.some((n) => n > 0 && n < encoded),
    `other work ran only before or after the whole commit (parts encoded when it ran: ${seen.join(', ')})`,
  );
  assert.equal(
    (await buffer.read(100)).reduce((n, b) => n + b.points, 0),
    400,
  );
});
