import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type { Batcher } from '../../../../agent/buffer/batcher.js';
import type { SideStore } from '../../../../agent/buffer/side-state.js';
import { SparkplugIngest } from '../../../../agent/pipeline/sparkplug.js';
import { EdgeNodes } from '../../../../agent/pipeline/sparkplug-state.js';
import { sparkplugMayPublish, sparkplugMaySubscribe } from '../../../../agent/receiver/sparkplug-acl.js';
import type { Reading } from '../../../../protocol/payload/types.js';

const tahu = createRequire(import.meta.url)('sparkplug-payload').get('spBv1.0') as {
  encodePayload(p: unknown): Uint8Array;
};

/** A side store in memory (the buffer's LevelDB one is tested with the buffer). */
function memoryStore(): SideStore & { data: Map<string, Uint8Array> } {
  const data = new Map<string, Uint8Array>();
  return {
    data,
    read: async (prefix) => [...data].filter(([k]) => k.startsWith(prefix)),
    write: async (entries) => {
      for (const [k, v] of entries)
        if (v === null) data.delete(k);
        else data.set(k, v);
    },
  };
}

/** Collects what the ingest hands to the group commit. */
function collector() {
  const readings: [string, Reading][] = [];
  const batcher = {
    addReadings: (id: string, rs: Reading[], done: ((e?: Error) => void) | null) => {
      for (const r of rs) readings.push([id, r]);
      done?.();
    },
    addEvents: (_id: string, _e: unknown[], done: ((e?: Error) => void) | null) => done?.(),
  } as unknown as Batcher;
  return { readings, batcher };
}

async function rig(store = memoryStore()) {
  let now = 1_000_000;
  const { readings, batcher } = collector();
  const published: string[] = [];
  const lost: number[] = [];
  const nodes = await EdgeNodes.load(store, (e) => assert.fail(e));
  const ingest = new SparkplugIngest(
    {
      topicRoot: 'spBv1.0',
      deviceId: '{group}:{edge_node}:{device}',
      nodeId: '{group}:{edge_node}',
      reorderTimeoutMs: 100,
      requestRebirth: true,
    },
    batcher,
    nodes,
    (topic) => published.push(topic),
    { onLost: (_n, k) => lost.push(k) },
    () => now,
  );
  const send = (type: string, seq: number, metrics: unknown[], device = '') =>
    ingest.handle(
      {
        topic: `spBv1.0/G/${type}/e1${device ? `/${device}` : ''}`,
        payload: tahu.encodePayload({ timestamp: now, seq, metrics }),
        qos: 0,
      },
      () => undefined,
    );
  const wait = async (ms: number) => {
    now += ms;
    await new Promise((r) => setTimeout(r, 60));
  };
  return { ingest, send, wait, readings, published, lost, nodes, store };
}

const seqs = (readings: [string, Reading][]) =>
  readings.filter(([id, r]) => id === 'G:e1' && r.seq >= 0).map(([, r]) => r.seq);

test('a late message within the reorder timeout fills its gap; one that never comes is lost and a rebirth asked', async (t) => {
  const r = await rig();
  t.after(() => r.ingest.stop());
  r.send('NBIRTH', 0, [
    { name: 'bdSeq', type: 'UInt64', value: 1 },
    { name: 'v', alias: 1, type: 'Int32', value: 0 },
  ]);
  r.send('NDATA', 1, [{ alias: 1, type: 'Int32', value: 1 }]);
  r.send('NDATA', 3, [{ alias: 1, type: 'Int32', value: 3 }]);
  r.send('NDATA', 2, [{ alias: 1, type: 'Int32', value: 2 }]); // late, within the timeout
  await r.wait(200);
  assert.deepEqual(r.lost, []);
  r.send('NDATA', 5, [{ alias: 1, type: 'Int32', value: 5 }]); // 4 never comes
  await r.wait(200);
  assert.deepEqual(r.lost, [1]);
  assert.deepEqual(r.published, ['spBv1.0/G/NCMD/e1']);
  assert.deepEqual(seqs(r.readings), [0, 1, 3, 2, 5], 'the unwrapped seq the aggregator counts from');
});

test('seq keeps growing across wraps and rebirths, and after a restart from the kept state', async (t) => {
  const store = memoryStore();
  const r = await rig(store);
  t.after(() => r.ingest.stop());
  r.send('NBIRTH', 0, [
    { name: 'bdSeq', type: 'UInt64', value: 1 },
    { name: 'v', alias: 1, type: 'Int32', value: 0 },
  ]);
  for (let i = 1; i < 300; i++) r.send('NDATA', i % 256, [{ alias: 1, type: 'Int32', value: i }]);
  r.send('NBIRTH', 0, [
    { name: 'bdSeq', type: 'UInt64', value: 2 },
    { name: 'v', alias: 1, type: 'Int32', value: 0 },
  ]);
  r.send('NDATA', 1, [{ alias: 1, type: 'Int32', value: 1 }]);
  await r.ingest.close();
  const before = seqs(r.readings);
  assert.deepEqual(
    before,
    Array.from({ length: 302 }, (_, i) => i),
  );
  // A restart: the kept state is read; DATA by alias is understood and seq continues forward.
  const again = await rig(store);
  t.after(() => again.ingest.stop());
  again.send('NDATA', 2, [{ alias: 1, type: 'Int32', value: 2 }]);
  assert.deepEqual(seqs(again.readings), [302]);
  assert.deepEqual(
    again.readings.map(([, x]) => [x.names, x.values]),
    [[['v'], [2]]],
  );
});

test('an edge node logged in as X publishes and subscribes only as X', () => {
  assert.ok(sparkplugMayPublish('spBv1.0', 'e1', 'spBv1.0/G/NDATA/e1'));
  assert.ok(sparkplugMayPublish('spBv1.0', 'e1', 'spBv1.0/G/DDATA/e1/pump'));
  assert.ok(!sparkplugMayPublish('spBv1.0', 'e1', 'spBv1.0/G/NDATA/e2'), "another edge node's topic");
  assert.ok(!sparkplugMayPublish('spBv1.0', 'e1', 'spBv1.0/G/NCMD/e1'), 'commands are for hosts to send');
  assert.ok(!sparkplugMayPublish('spBv1.0', 'e1', 'spBv1.0/G/NDATA/e1/pump'), 'NDATA has no device level');
  assert.ok(sparkplugMaySubscribe('spBv1.0', 'e1', 'spBv1.0/G/NCMD/e1/#'));
  assert.ok(sparkplugMaySubscribe('spBv1.0', 'e1', 'spBv1.0/G/DCMD/e1/+'));
  assert.ok(sparkplugMaySubscribe('spBv1.0', 'e1', 'spBv1.0/STATE/+'));
  assert.ok(!sparkplugMaySubscribe('spBv1.0', 'e1', 'spBv1.0/G/NCMD/+/#'), "others' commands");
  assert.ok(!sparkplugMaySubscribe('spBv1.0', 'e1', 'spBv1.0/#'));
  assert.ok(!sparkplugMaySubscribe('spBv1.0', 'e1', 'spBv1.0/G/NDATA/e1'), 'its own data: not a command');
});
