import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Device, MetricShape } from '../../../../aggregator/device/device-record.js';

test('devices reporting the same metrics in the same order share one shape; other orders fork with the right slots', () => {
  const a = new Device('a');
  const b = new Device('b');
  const c = new Device('c');
  for (const n of ['temp', 'hum', 'volt']) a.slotOf(n);
  for (const n of ['temp', 'hum']) b.slotOf(n);
  for (const n of ['temp', 'volt', 'hum']) c.slotOf(n);
  assert.deepEqual(a.shape.names, ['temp', 'hum', 'volt']);
  assert.deepEqual(b.shape.names, ['temp', 'hum']);
  assert.equal(b.shape.slotOf('volt'), undefined, 'a name further along the shared chain is not in the shorter shape');
  b.slotOf('volt');
  assert.equal(b.shape, a.shape, 'the same names in the same order: one shape');
  assert.deepEqual(c.shape.names, ['temp', 'volt', 'hum']);
  assert.equal(c.shape.slotOf('volt'), 1);
  assert.equal(c.shape.slotOf('hum'), 2);
  assert.equal(a.shape.slotOf('hum'), 1);
  const d = new Device('d');
  for (const n of ['temp', 'volt', 'hum']) d.slotOf(n);
  assert.equal(d.shape, c.shape, 'a fork is shared too');
  assert.equal(MetricShape.EMPTY.length, 0);
});

test('a device with many distinct metric names holds them once (linear), and stops at max_metrics', () => {
  const dev = new Device('many');
  for (let i = 0; i < 20_000; i++) dev.addMetric(`m.${i}`, 5_000);
  assert.equal(dev.shape.length, 5_000);
  assert.equal(dev.addMetric('one.more', 5_000), -1);
  assert.equal(dev.shape.slotOf('m.4999'), 4_999);
  // Every shape along the way shares one list: the names of the final shape are the very array of the chain.
  assert.equal(dev.shape.names, dev.shape.names);
  assert.equal(dev.addMetric('bad\u0001name'), -1, 'a name outside the metric name rule is refused');
  assert.equal(dev.addMetric('x'.repeat(256)), -1, 'a name over 255 characters is refused');
});
