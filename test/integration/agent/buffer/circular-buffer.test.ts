import { Compression } from '../../../../protocol/compression.js';
import { Signal } from '../../../../protocol/otlp/signal.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { CircularBuffer } from '../../../../agent/buffer/circular-buffer.js';
import { diskUsage, tempDir } from '../../../helpers/tmp.js';

const batch = (bytes: number, points = 10) => ({
  signal: Signal.METRICS,
  compression: Compression.ZSTD,
  points,
  payload: randomBytes(bytes),
});

test('stored batches come back oldest first, byte for byte, and leave only when removed', async (t) => {
  const dir = tempDir(t);
  const buf = await CircularBuffer.open({ dir, maxBytes: 1 << 20 });
  const sent = [batch(100, 5), { ...batch(50, 3), signal: Signal.LOGS }, batch(10, 1)];
  const seqs = [];
  for (const b of sent) seqs.push((await buf.append({ ...b, createdMs: 1732280000000 })).seq);
  assert.deepEqual(seqs, [1, 2, 3]);
  const got = await buf.read(10);
  assert.deepEqual(
    got.map((b) => b.seq),
    [1, 2, 3],
  );
  assert.deepEqual(
    got.map((b) => b.signal),
    [Signal.METRICS, Signal.LOGS, Signal.METRICS],
  );
  assert.deepEqual(
    got.map((b) => Buffer.from(b.payload)),
    sent.map((b) => b.payload),
  );
  assert.equal(got[0].createdMs, 1732280000000);
  assert.deepEqual(
    (await buf.read(10, 1)).map((b) => b.seq),
    [2, 3],
  );
  assert.equal(await buf.remove([1, 3]), 2);
  assert.deepEqual(
    (await buf.read(10)).map((b) => b.seq),
    [2],
  );
  const s = buf.stats();
  assert.equal(s.batches, 1);
  assert.equal(s.points, 3);
  assert.equal(s.bytes, 16 + 50);
  assert.equal(s.oldestCreatedMs, 1732280000000, 'the backlog age comes from the index');
  await buf.close();
});

test('a restart resumes sequence numbers, sizes and counters, and never reuses a seq', async (t) => {
  const dir = tempDir(t);
  let buf = await CircularBuffer.open({ dir, maxBytes: 1 << 20 });
  for (let i = 0; i < 5; i++) await buf.append(batch(200, 7));
  await buf.remove([1, 2]);
  const before = buf.stats();
  await buf.close();

  buf = await CircularBuffer.open({ dir, maxBytes: 1 << 20 });
  assert.deepEqual(buf.stats(), before);
  await buf.remove([3, 4, 5]);
  await buf.close();

  buf = await CircularBuffer.open({ dir, maxBytes: 1 << 20 });
  assert.equal(buf.stats().batches, 0);
  assert.equal((await buf.append(batch(10))).seq, 6, 'an emptied buffer still continues after the last seq');
  assert.equal(buf.stats().appendedBatches, 6);
  assert.equal(buf.stats().appendedPoints, 5 * 7 + 10);
  await buf.close();
});

test('past the cap the oldest batches are dropped in the same write, counted exactly and persistently', async (t) => {
  const dir = tempDir(t);
  const cap = 2 * 1024 * 1024;
  let buf = await CircularBuffer.open({ dir, maxBytes: cap, sync: false });
  const record = 16 + 4000;
  let appended = 0;
  let reportedDropped = 0;
  for (let i = 0; i < 5000; i++) {
    const r = await buf.append(batch(4000, 25)); // incompressible: LevelDB cannot hide overshoot
    reportedDropped += r.droppedBatches;
    appended++;
    assert.ok(buf.stats().bytes <= cap, `stored bytes ${buf.stats().bytes} within the cap after batch ${i}`);
  }
  const s = buf.stats();
  const fits = Math.floor(cap / record);
  assert.equal(s.batches, fits);
  assert.equal(s.droppedBatches, appended - fits);
  assert.equal(s.droppedBatches, reportedDropped);
  assert.equal(s.droppedPoints, (appended - fits) * 25);
  assert.equal(s.oldestSeq, appended - fits + 1, 'what remains is the newest');
  await buf.compact();
  const onDisk = diskUsage(dir);
  assert.ok(onDisk <= 1.1 * cap, `on disk ${onDisk} bytes after compaction, cap ${cap}`);
  await buf.close();

  buf = await CircularBuffer.open({ dir, maxBytes: cap });
  assert.equal(buf.stats().droppedBatches, appended - fits);
  assert.equal(buf.stats().bytes, fits * record);
  await buf.close();
});

test('removing a batch that the cap already dropped is harmless', async (t) => {
  const dir = tempDir(t);
  const buf = await CircularBuffer.open({ dir, maxBytes: 100 });
  await buf.append(batch(60));
  await buf.append(batch(60)); // pushes seq 1 out
  assert.equal(await buf.remove([1]), 0);
  assert.deepEqual(
    (await buf.read(5)).map((b) => b.seq),
    [2],
  );
  await buf.close();
});

test('the cap passes over batches the uplink is delivering, and tells it which ones it drops before they go', async (t) => {
  const dir = tempDir(t);
  const record = 16 + 4000;
  const buf = await CircularBuffer.open({ dir, maxBytes: 4 * record, sync: false });
  t.after(() => buf.close());
  for (let i = 0; i < 4; i++) await buf.append(batch(4000, 25)); // seqs 1-4 fill the cap
  const sending = new Set([1, 2]);
  const told: number[][] = [];
  buf.attachUplink({ sending: (seq) => sending.has(seq), dropping: (seqs) => told.push([...seqs]) });
  const r = await buf.append(batch(4000, 25));
  assert.deepEqual(told, [[3]], 'the oldest batch not in flight goes, and the uplink hears of it first');
  assert.equal(r.droppedBatches, 1);
  assert.deepEqual(
    (await buf.read(10)).map((b) => b.seq),
    [1, 2, 4, 5],
    'the batches in flight stay until their answer',
  );
  sending.clear();
  await buf.remove([1]); // delivered
  await buf.append(batch(4000, 25));
  assert.deepEqual(
    (await buf.read(10)).map((b) => b.seq),
    [2, 4, 5, 6],
    'under the cap again: nothing dropped',
  );
  await buf.append(batch(4000, 25));
  assert.deepEqual(told.at(-1), [2]);
  assert.equal(buf.stats().droppedBatches, 2);
  assert.equal(buf.stats().droppedPoints, 50, 'only what was never delivered counts as dropped');
});
