import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sparseEmitter } from '../../../../agent/receiver/sparse-emitter.js';
import { matches } from '../../../../protocol/mqtt/frames.js';

const m = (filter: string, topic: string) => matches(filter.split('/'), topic.split('/'));

test('filters match as in MQTT: + one level (empty too), # the rest including none', () => {
  assert.ok(m('devices/+/errors', 'devices/d1/errors'));
  assert.ok(m('devices/+/errors', 'devices//errors'));
  assert.ok(!m('devices/+/errors', 'devices/d1/telemetry'));
  assert.ok(!m('devices/+', 'devices/d1/errors'));
  assert.ok(m('devices/#', 'devices'));
  assert.ok(m('devices/#', 'devices/d1/telemetry'));
  assert.ok(m('#', 'a/b/c'));
  assert.ok(!m('a/b', 'a/b/c'));
  assert.ok(m('a/b/c', 'a/b/c'));
});

test('a publish nobody can receive is answered without routing; subscriptions are seen by the very next publish', async () => {
  const mq = sparseEmitter();
  const got: string[] = [];
  const emit = (topic: string) =>
    new Promise<void>((resolve) => mq.emit({ topic, payload: Buffer.from('x') }, () => resolve()));
  await emit('devices/d1/telemetry'); // nothing subscribed: answered at once
  const listener = (msg: { topic: string }, done: () => void) => {
    got.push(msg.topic);
    done();
  };
  await new Promise<void>((r) => mq.on('devices/+/telemetry', listener, r));
  await emit('devices/d1/telemetry');
  await emit('devices/d2/errors');
  assert.deepEqual(
    got,
    ['devices/d1/telemetry'],
    'the topic cached as unreachable before the subscribe is routed after it',
  );
  const all = (msg: { topic: string }, done: () => void) => {
    got.push(`#${msg.topic}`);
    done();
  };
  await new Promise<void>((r) => mq.on('#', all, r));
  await emit('devices/d2/errors');
  assert.deepEqual(got, ['devices/d1/telemetry', '#devices/d2/errors']);
  await new Promise<void>((r) => mq.removeListener('#', all, r));
  await new Promise<void>((r) => mq.removeListener('devices/+/telemetry', listener, r));
  await emit('devices/d1/telemetry');
  assert.equal(got.length, 2, 'nothing is delivered once every subscription is gone');
  await new Promise<void>((r) => mq.close(r));
});
