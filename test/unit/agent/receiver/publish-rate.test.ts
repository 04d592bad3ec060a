import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PublishRate } from '../../../../agent/receiver/publish-rate.js';

test('a burst of one second passes; past it each message is refused, the first of a run said so; it refills', () => {
  let now = 1000;
  const rate = new PublishRate(3, () => now);
  const conn = {};
  assert.deepEqual(
    [1, 2, 3, 4, 5].map(() => rate.take(conn)),
    ['ok', 'ok', 'ok', 'first_over', 'over'],
  );
  assert.equal(rate.take({}), 'ok', 'another connection has its own bucket');
  now += 340; // one message's worth of time (1/3 s)
  assert.deepEqual([rate.take(conn), rate.take(conn)], ['ok', 'first_over']);
  now += 10_000;
  assert.deepEqual(
    [1, 2, 3, 4].map(() => rate.take(conn)),
    ['ok', 'ok', 'ok', 'first_over'],
    'refilled to one second, not more',
  );
  assert.equal(new PublishRate(0).take(conn), 'ok', '0 = no limit');
});
