import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AckedSeqs } from '../../../../simulators/fleet/device.js';

test('acks in order keep one number: everything below it is acknowledged', () => {
  const a = new AckedSeqs();
  for (let s = 0; s < 1000; s++) a.add(s, s);
  assert.equal(a.contiguous, 1000);
  assert.equal(a.count, 1000);
  assert.equal(a.has(999), true);
  assert.equal(a.has(1000), false);
  assert.equal(a.toArray().length, 1000);
});

test('acks past a gap wait until the gap closes, and a gap that never closes stays visible', () => {
  const a = new AckedSeqs();
  a.add(0, 2); // a message of three readings
  a.add(6, 8);
  a.add(9, 11);
  assert.equal(a.contiguous, 3);
  assert.equal(a.count, 9);
  assert.equal(a.has(4), false);
  assert.equal(a.has(7), true);
  assert.deepEqual(a.toArray(), [0, 1, 2, 6, 7, 8, 9, 10, 11]);
  a.add(3, 5);
  assert.equal(a.contiguous, 12);
  assert.deepEqual(
    a.toArray(),
    Array.from({ length: 12 }, (_, i) => i),
  );
});

test('an ack received twice (a resend after reconnect) counts once', () => {
  const a = new AckedSeqs();
  a.add(0, 0);
  a.add(0, 0);
  a.add(2, 2);
  a.add(2, 2);
  assert.equal(a.count, 2);
  assert.deepEqual(a.toArray(), [0, 2]);
});
