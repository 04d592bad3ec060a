import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iso } from '../../../aggregator/rfc3339.js';

test('times are written to the nearest millisecond: float error from nanoseconds does not lose one', () => {
  const ms = Date.parse('2026-12-02T16:45:34.434Z');
  const fromNanos = Number(BigInt(ms) * 1_000_000n) / 1e6 - 1e-4; // what a float round trip through ns can give
  assert.ok(fromNanos < ms);
  assert.equal(iso(fromNanos), '2026-12-02T16:45:34.434Z');
  assert.equal(iso(ms + 0.4), '2026-12-02T16:45:34.434Z');
  assert.equal(iso(null), null);
  assert.equal(iso(NaN), null);
});
