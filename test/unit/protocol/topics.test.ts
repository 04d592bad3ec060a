import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_TOPICS, isValidDeviceId, TopicMatcher } from '../../../protocol/topics.js';
import { TopicError } from '../../../protocol/errors.js';

test('default templates match device topics to kind and device id', () => {
  const m = new TopicMatcher();
  assert.deepEqual(m.match('devices/dev-1/telemetry'), { kind: 'telemetry', deviceId: 'dev-1' });
  assert.deepEqual(m.match('devices/a.b:c_D-9/events'), { kind: 'events', deviceId: 'a.b:c_D-9' });
  assert.deepEqual(m.match('devices/x/errors'), { kind: 'errors', deviceId: 'x' });
  for (const other of ['devices//telemetry', 'devices/a/b/telemetry', 'devices/a/telemetry/x', 'device/a/telemetry', 'devices/a/status', '$SYS/broker', '']) {
    assert.equal(m.match(other), null, other);
  }
});

test('a topic of the right shape with a bad device id is a coded error naming the rule', () => {
  const m = new TopicMatcher();
  for (const id of ['a b', 'é', 'x'.repeat(129), 'a+b']) {
    assert.throws(() => m.match(`devices/${id}/telemetry`), (e: unknown) => e instanceof TopicError && e.code === 'OTLPEDGE_TOPIC_BAD_DEVICE_ID' && /1–128 characters/.test(e.message));
  }
  assert.equal(isValidDeviceId('x'.repeat(128)), true);
  assert.equal(isValidDeviceId(''), false);
});

test('custom templates work with the placeholder anywhere as a whole level', () => {
  const m = new TopicMatcher({ telemetry: 'plant7/{deviceId}/t', events: 'plant7/{deviceId}/e', errors: 'plant7/err/{deviceId}' });
  assert.deepEqual(m.match('plant7/pump-3/t'), { kind: 'telemetry', deviceId: 'pump-3' });
  assert.deepEqual(m.match('plant7/err/pump-3'), { kind: 'errors', deviceId: 'pump-3' });
  assert.equal(m.topicFor('errors', 'pump-3'), 'plant7/err/pump-3');
  assert.deepEqual(m.subscriptions(), ['plant7/+/t', 'plant7/+/e']);
  const lead = new TopicMatcher({ telemetry: '{deviceId}/telemetry', events: '{deviceId}/events', errors: '{deviceId}/errors' });
  assert.deepEqual(lead.match('d1/events'), { kind: 'events', deviceId: 'd1' });
});

test('malformed templates are refused at start with the template named', () => {
  const bad = [
    { ...DEFAULT_TOPICS, telemetry: 'devices/telemetry' },
    { ...DEFAULT_TOPICS, telemetry: 'devices/{deviceId}{deviceId}/t' },
    { ...DEFAULT_TOPICS, telemetry: 'devices/+/{deviceId}' },
    { ...DEFAULT_TOPICS, telemetry: 'devices//{deviceId}' },
    { ...DEFAULT_TOPICS, telemetry: 'devices/dev-{deviceId}/t' },
    { ...DEFAULT_TOPICS, events: DEFAULT_TOPICS.telemetry },
  ];
  for (const t of bad) assert.throws(() => new TopicMatcher(t), (e: unknown) => e instanceof TopicError && e.code === 'OTLPEDGE_TOPIC_BAD_TEMPLATE');
});
