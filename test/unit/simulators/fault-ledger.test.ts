import { test } from 'node:test';
import assert from 'node:assert/strict';
import { account, Acks, SeqBackend } from '../../../simulators/fault/ledger.js';

test('the fault accounting finds an acknowledged reading that never arrived, and counts duplicates', () => {
  const acks = new Acks();
  const backend = new SeqBackend();
  for (const s of [0, 1, 2, 3]) acks.add('d1', s);
  acks.add('d2', 7);
  backend.byDevice.set(
    'd1',
    new Map([
      [0, 1],
      [1, 2],
      [3, 1],
      [4, 1],
    ]),
  ); // 2 lost, 1 twice, 4 never acked
  const a = account(acks, backend, 5);
  assert.deepEqual(a, {
    devices: 2,
    acked: 5,
    delivered: 4,
    duplicated: 1,
    droppedCounted: 5,
    lost: 2,
    lostExamples: ['d1:2', 'd2:7'],
    outOfOrderDrops: 0,
  });
  backend.byDevice.get('d1')!.set(2, 1);
  backend.byDevice.set('d2', new Map([[7, 1]]));
  assert.equal(account(acks, backend).lost, 0);
  // Lost 10 and 12 with 11 delivered between them: not oldest first.
  for (const s of [10, 11, 12]) acks.add('d2', s);
  backend.byDevice.get('d2')!.set(11, 1);
  assert.deepEqual([account(acks, backend).lost, account(acks, backend).outOfOrderDrops], [2, 1]);
});
