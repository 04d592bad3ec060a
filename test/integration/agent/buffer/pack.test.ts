import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { ClassicLevel } from 'classic-level';
import { CircularBuffer } from '../../../../agent/buffer/circular-buffer.js';
import { BacklogPacker } from '../../../../agent/buffer/packer.js';
import { segmentsOf } from '../../../../agent/buffer/pack.js';
import { Compression, ZstdCompressor } from '../../../../protocol/compression.js';
import { MetricsEncoder } from '../../../../protocol/otlp/metrics-encoder.js';
import { LogsEncoder } from '../../../../protocol/otlp/logs-encoder.js';
import { Signal } from '../../../../protocol/otlp/signal.js';
import { mulberry32 } from '../../../helpers/random.js';
import { tempDir } from '../../../helpers/tmp.js';

/**
 * Packing an undelivered backlog (buffer.pack_after): runs of small stored batches become compact records that
 * give back every batch's OTLP exactly, under its own seq, survive a reopen, and never touch what the uplink holds.
 */

const silent = pino({ level: 'silent' });
const zstd = new ZstdCompressor(3);
const metrics = new MetricsEncoder({ gatewayId: 'gw-pack', attributes: { site: 'plant-7' } });
const logs = new LogsEncoder({ gatewayId: 'gw-pack' });
const OLD = Date.now() - 3_600_000;

/** `n` commits as at field load: a few devices, one reading each, stored an hour ago. */
async function backlog(buffer: CircularBuffer, n: number, logsEvery = 0) {
  const r = mulberry32(5);
  const requests: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const isLogs = logsEvery > 0 && i % logsEvery === logsEvery - 1;
    const otlp = isLogs
      ? logs.encode([
          {
            deviceId: 'dev-1',
            events: [{ ts: OLD + i, severityNumber: 13, severityText: 'warn', body: 'door', attributes: null }],
          },
        ])
      : metrics.encode(
          Array.from({ length: 3 }, (_, d) => ({
            deviceId: `dev-${(i * 3 + d) % 50}`,
            readings: [
              {
                ts: OLD + i * 20 + d,
                seq: i,
                names: ['temperature', 'humidity'],
                values: [Math.round((20 + r()) * 100) / 100, 40 + Math.floor(r() * 3)],
                attributes: ['fw', '1.4.2'],
              },
            ],
          })),
        );
    requests.push(otlp);
    await buffer.append({
      signal: isLogs ? Signal.LOGS : Signal.METRICS,
      compression: Compression.ZSTD,
      points: isLogs ? 1 : 9,
      payload: zstd.compress(otlp),
      createdMs: OLD + i,
    });
  }
  return requests;
}

test('an old backlog is packed into compact records that give back every batch exactly, under its seq', async (t) => {
  const dir = tempDir(t);
  let buffer = await CircularBuffer.open({ dir, maxBytes: 64 << 20, sync: false });
  const requests = await backlog(buffer, 300, 50);
  const before = buffer.stats();
  const packer = new BacklogPacker(buffer, null, { afterMs: 60_000, zstdLevel: 3 }, silent);
  await packer.run();
  const after = buffer.stats();
  assert.equal(after.points, before.points, 'every point is still stored');
  assert.ok(after.batches <= 12, `${after.batches} records (runs of metrics between the logs batches)`);
  assert.ok(after.bytes * 3 < before.bytes, `${before.bytes} bytes became ${after.bytes}`);
  assert.equal(buffer.lowWater(), 1);

  await buffer.close();
  buffer = await CircularBuffer.open({ dir, maxBytes: 64 << 20, sync: false });
  t.after(() => buffer.close());
  const seen: number[] = [];
  for await (const b of buffer.entries()) {
    for (const s of segmentsOf(b)) {
      seen.push(s.seq);
      assert.deepEqual(Buffer.from(s.otlp), Buffer.from(requests[s.seq - 1]), `batch ${s.seq} as it was stored`);
      assert.equal(s.signal, (s.seq % 50 === 0 ? Signal.LOGS : Signal.METRICS) as Signal);
    }
  }
  assert.deepEqual(
    seen,
    Array.from({ length: 300 }, (_, i) => i + 1),
  );
  const db = new ClassicLevel(dir);
  // The buffer says it holds packed records: an agent that reads only format 1 refuses it instead of misreading.
  await buffer.close();
  await db.open();
  assert.equal(await db.get('meta:format'), '2');
  await db.close();
  buffer = await CircularBuffer.open({ dir, maxBytes: 64 << 20, sync: false });

  // Deleting a delivered packed record deletes every batch in it.
  const first = (await buffer.read(1))[0];
  assert.ok(first.segments && first.segments.length > 1);
  await buffer.remove([first.seq]);
  assert.equal(buffer.stats().points, after.points - first.points);
  assert.equal(buffer.lowWater(), (await buffer.read(1))[0].seq);
});

test('the packer leaves alone what the uplink holds and what is younger than pack_after', async (t) => {
  const buffer = await CircularBuffer.open({ dir: tempDir(t), maxBytes: 64 << 20, sync: false });
  t.after(() => buffer.close());
  await backlog(buffer, 40);
  for (let i = 0; i < 5; i++)
    await buffer.append({
      signal: Signal.METRICS,
      compression: Compression.ZSTD,
      points: 1,
      payload: zstd.compress(new Uint8Array(0)),
    });
  let released = 0;
  const holder = { holdReads: async () => ({ holds: (seq: number) => seq <= 10, release: () => released++ }) };
  await new BacklogPacker(buffer, holder, { afterMs: 60_000, zstdLevel: 3 }, silent).run();
  const records = await buffer.read(100);
  assert.deepEqual(
    records.slice(0, 10).map((b) => [b.seq, b.segments === undefined]),
    Array.from({ length: 10 }, (_, i) => [i + 1, true]),
    'batches the uplink holds are untouched',
  );
  assert.deepEqual(
    records[10].segments?.map((s) => s.seq),
    Array.from({ length: 30 }, (_, i) => i + 11),
  );
  assert.ok(
    records.slice(11).every((b) => b.segments === undefined),
    'young batches are not packed',
  );
  assert.ok(released >= 1, 'the uplink was let go again');
});
