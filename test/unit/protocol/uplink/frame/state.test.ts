import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Dict, hashBytes } from '../../../../../protocol/uplink/frame/state.js';

/** Two different 8-byte strings with the same hash (a birthday search over 30 bits: some 40,000 tries). */
function collision(): [Uint8Array, Uint8Array] {
  const bytesOf = (i: number) => new Uint8Array(new Uint32Array([Math.imul(i, 0x9e3779b1) >>> 0, i]).buffer);
  const seen = new Map<number, number>();
  for (let i = 0; i < 1 << 22; i++) {
    const h = hashBytes(bytesOf(i), 0, 8);
    const j = seen.get(h);
    if (j !== undefined) return [bytesOf(j), bytesOf(i)];
    seen.set(h, i);
  }
  throw new Error('no collision in 4 M tries');
}

test('a dictionary finds each entry by its bytes, in place, also when two entries share a hash', () => {
  const [a, b] = collision();
  assert.notDeepEqual(a, b);
  assert.equal(hashBytes(a, 0, 8), hashBytes(b, 0, 8));
  const d = new Dict(10);
  assert.equal(d.add(a.slice()), 0);
  assert.equal(d.find(b, 0, 8), -1, 'same hash, other bytes: not found');
  assert.equal(d.add(b.slice()), 1);
  // Looked up inside a larger buffer, as the encoder does with its sinks.
  const inA = new Uint8Array([9, 9, ...a, 7]);
  const inB = new Uint8Array([...b, 1, 2, 3]);
  assert.equal(d.find(inA, 2, 10), 0);
  assert.equal(d.find(inB, 0, 8), 1);
  assert.equal(d.find(inB, 0, 7), -1, 'a prefix is another entry');
  assert.equal(d.find(new Uint8Array(0), 0, 0), -1);
  assert.equal(d.add(new Uint8Array(0)), 2);
  assert.equal(d.find(inA, 1, 1), 2, 'the empty entry');
});

test('a dictionary refuses entries past its limit', () => {
  const d = new Dict(2);
  d.add(new Uint8Array([1]));
  d.add(new Uint8Array([2]));
  assert.throws(() => d.add(new Uint8Array([3])), /dictionary holds more than 2 entries/);
});
