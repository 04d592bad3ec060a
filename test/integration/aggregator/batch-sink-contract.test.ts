import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { ClusterMembership } from '../../../aggregator/cluster/cluster-membership.js';
import { ClusterRouter } from '../../../aggregator/cluster/router.js';
import type { BatchSink } from '../../../aggregator/ingest/uplink-service.js';
import type { DeviceStateStore } from '../../../aggregator/state/store.js';
import { data, openStore } from './state/helpers.js';

/**
 * One contract every batch sink keeps — the node's state store, and the cluster router in front of it: a batch is
 * applied once its effect is durable, the same (agent, seq) again is a duplicate that changes nothing, and a new seq
 * of the same agent is applied.
 */

const sinks: [string, (store: DeviceStateStore) => BatchSink][] = [
  ['state store', (store) => store],
  [
    'cluster router',
    (store) => {
      const cluster = new ClusterMembership(
        {
          self: { id: 'n0', address: '127.0.0.1:1' },
          members: [],
          dns: '',
          dnsPort: 4317,
          dnsServer: '',
          vnodes: 128,
          probeIntervalMs: 1000,
          failureTimeoutMs: 5000,
          dnsIntervalMs: 10_000,
          secret: null,
          tls: null,
        },
        pino({ level: 'silent' }),
      );
      return new ClusterRouter(cluster, store);
    },
  ],
];

for (const [name, make] of sinks) {
  test(`${name} keeps the batch sink contract: durable apply, duplicates change nothing, new seqs apply`, async (t) => {
    const o = await openStore(t);
    const sink = make(o.store);
    const first = await sink.apply([data('s-1', [1, 2, 3]), data('s-2', [1])], { source: 'gw-1', seq: 1 });
    assert.deepEqual(first, { ...first, duplicate: false, points: 4 });
    const again = await sink.apply([data('s-1', [1, 2, 3]), data('s-2', [1])], { source: 'gw-1', seq: 1 });
    assert.equal(again.duplicate, true);
    const next = await sink.apply([data('s-1', [4])], { source: 'gw-1', seq: 2 });
    assert.equal(next.duplicate, false);
    assert.deepEqual(o.store.get('s-1')!.counts, { received: 4, duplicates: 0, missing: 0 });
    // Durable: a reopened store has it all.
    const reopened = await o.reopen();
    assert.deepEqual(reopened.get('s-1')!.counts, { received: 4, duplicates: 0, missing: 0 });
    assert.equal(reopened.get('s-2')!.latest.temp.value, 21);
  });
}
