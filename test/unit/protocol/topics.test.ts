import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_TOPICS, TopicMatcher } from '../../../protocol/topics.js';
import { isValidId } from '../../../protocol/ids.js';
import { TopicError } from '../../../protocol/errors.js';

const isTopicError =
  (code: string, message?: RegExp) =>
  (e: unknown): boolean => {
    assert.ok(e instanceof TopicError, `expected a TopicError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  };

test('default templates map device topics to their kind and device id', () => {
  const m = new TopicMatcher();
  assert.deepEqual(m.templates, DEFAULT_TOPICS);
  assert.deepEqual(m.match('devices/dev-1/telemetry'), { kind: 'telemetry', deviceId: 'dev-1' });
  assert.deepEqual(m.match('devices/a.b:c_D-9/events'), { kind: 'events', deviceId: 'a.b:c_D-9' });
  assert.deepEqual(m.match('devices/x/errors'), { kind: 'errors', deviceId: 'x' });
  assert.deepEqual(m.match(`devices/${'x'.repeat(128)}/telemetry`), { kind: 'telemetry', deviceId: 'x'.repeat(128) });
});

test('topics of another shape are not ours: null, not an error', () => {
  const m = new TopicMatcher();
  for (const other of [
    'devices/a/b/telemetry',
    'devices/a/telemetry/x',
    'device/a/telemetry',
    'devices/a/status',
    'devices/a/telemetry/',
    '/devices/a/telemetry',
    'devices/telemetry',
    'devices/',
    'devices',
    '$SYS/broker/uptime',
    '',
    'telemetry',
    'Devices/a/telemetry',
  ]) {
    assert.equal(m.match(other), null, other);
  }
});

test("a topic of a template's shape with an invalid device id is a coded error naming the topic and the rule", () => {
  const m = new TopicMatcher();
  const cases: [string, RegExp][] = [
    ['a b', /" " at position 1 is not allowed/],
    ['é', /"é" at position 0 is not allowed/],
    ['a+b', /"\+" at position 1/],
    ['x'.repeat(129), /it is 129 characters/],
    ['', /it is empty/],
    ['dev\u0000', /position 3/],
  ];
  for (const [id, why] of cases) {
    assert.throws(
      () => m.match(`devices/${id}/telemetry`),
      isTopicError(
        'OTLPEDGE_TOPIC_BAD_DEVICE_ID',
        /^topic "devices\/.*\/telemetry": device id ".*" must be 1–128 characters of \[A-Za-z0-9._:-\]/,
      ),
    );
    assert.throws(() => m.match(`devices/${id}/events`), isTopicError('OTLPEDGE_TOPIC_BAD_DEVICE_ID', why));
  }
});

test('isValidDeviceId: 1–128 characters of [A-Za-z0-9._:-]', () => {
  for (const ok of ['a', 'A-Z_0.9:x', 'x'.repeat(128), 'urn:dev:mac:0024befffe804ff1'])
    assert.equal(isValidId(ok), true, ok);
  for (const bad of ['', 'x'.repeat(129), 'a/b', 'a+b', 'a#', 'a b', 'ü', '😀', 'a\n', '{deviceId}'])
    assert.equal(isValidId(bad), false, bad);
});

test("topicFor builds a device's topics and refuses an invalid id; subscriptions use + for the device level", () => {
  const m = new TopicMatcher();
  assert.equal(m.topicFor('errors', 'pump-3'), 'devices/pump-3/errors');
  assert.equal(m.topicFor('telemetry', 'pump-3'), 'devices/pump-3/telemetry');
  assert.throws(() => m.topicFor('errors', 'a/b'), isTopicError('OTLPEDGE_TOPIC_BAD_DEVICE_ID', /^device id "a\/b"/));
  assert.throws(() => m.topicFor('errors', '+'), isTopicError('OTLPEDGE_TOPIC_BAD_DEVICE_ID'));
  assert.deepEqual(m.subscriptions(), ['devices/+/telemetry', 'devices/+/events']);
  assert.equal(m.subscriptionFor('errors'), 'devices/+/errors');
  for (const kind of ['telemetry', 'events', 'errors'] as const)
    assert.deepEqual(m.match(m.topicFor(kind, 'd-1')), { kind, deviceId: 'd-1' });
});

test('custom templates work with the placeholder at any level', () => {
  const m = new TopicMatcher({
    telemetry: 'plant7/t/{deviceId}',
    events: 'site/{deviceId}/e',
    errors: 'plant7/err/x/{deviceId}',
  });
  assert.deepEqual(m.match('plant7/t/pump-3'), { kind: 'telemetry', deviceId: 'pump-3' });
  assert.deepEqual(m.match('site/pump-3/e'), { kind: 'events', deviceId: 'pump-3' });
  assert.deepEqual(m.match('plant7/err/x/pump-3'), { kind: 'errors', deviceId: 'pump-3' });
  assert.equal(m.match('plant7/t/pump-3/more'), null);
  assert.equal(m.topicFor('errors', 'pump-3'), 'plant7/err/x/pump-3');
  assert.deepEqual(m.subscriptions(), ['plant7/t/+', 'site/+/e']);
  const lead = new TopicMatcher({
    telemetry: '{deviceId}/telemetry',
    events: '{deviceId}/events',
    errors: 'errors/x/{deviceId}',
  });
  assert.deepEqual(lead.match('d1/events'), { kind: 'events', deviceId: 'd1' });
  assert.deepEqual(lead.match('errors/x/d1'), { kind: 'errors', deviceId: 'd1' });
  assert.equal(lead.match('d1/status'), null);
});

test('malformed templates are refused at start, naming the kind and the template', () => {
  const bad: [Partial<typeof DEFAULT_TOPICS>, RegExp][] = [
    [
      { telemetry: 'devices/telemetry' },
      /^topic template for telemetry "devices\/telemetry" has no \{deviceId\} placeholder/,
    ],
    [{ telemetry: 'devices/{deviceId}/{deviceId}' }, /more than once/],
    [{ events: 'devices/+/{deviceId}' }, /^topic template for events .* wildcard/],
    [{ events: 'devices/{deviceId}/#' }, /wildcard/],
    [{ errors: 'devices//{deviceId}' }, /^topic template for errors .* empty topic level/],
    [{ errors: '/devices/{deviceId}' }, /empty topic level/],
    [{ errors: 'devices/{deviceId}/' }, /empty topic level/],
    [{ telemetry: 'devices/dev-{deviceId}/t' }, /whole topic level/],
    [{ telemetry: 'devices/{deviceId}x/t' }, /whole topic level/],
    [{ telemetry: '$SYS/{deviceId}/t' }, /starts with \$/],
    [{ telemetry: 'a\u0000/{deviceId}' }, /U\+0000/],
    [{ telemetry: '' }, /no \{deviceId\}/],
  ];
  for (const [t, why] of bad) {
    assert.throws(
      () => new TopicMatcher({ ...DEFAULT_TOPICS, ...t }),
      isTopicError('OTLPEDGE_TOPIC_BAD_TEMPLATE', why),
      JSON.stringify(t),
    );
  }
  assert.throws(
    () => new TopicMatcher({ ...DEFAULT_TOPICS, telemetry: 5 } as never),
    isTopicError('OTLPEDGE_TOPIC_BAD_TEMPLATE', /is not a string/),
  );
});

test('two templates that one topic could match are refused: the kind of a message must be unambiguous', () => {
  const overlapping = [
    { ...DEFAULT_TOPICS, events: DEFAULT_TOPICS.telemetry },
    // "plant7/err/t" would be device "err"'s telemetry and device "t"'s errors
    { telemetry: 'plant7/{deviceId}/t', events: 'plant7/{deviceId}/e', errors: 'plant7/err/{deviceId}' },
    { telemetry: '{deviceId}/t', events: 'e/{deviceId}', errors: 'x/y/{deviceId}' },
  ];
  for (const t of overlapping) {
    assert.throws(
      () => new TopicMatcher(t),
      isTopicError('OTLPEDGE_TOPIC_BAD_TEMPLATE', /can match the same topic/),
      JSON.stringify(t),
    );
  }
  // different level counts never overlap
  assert.ok(new TopicMatcher({ telemetry: '{deviceId}/t', events: 'e/{deviceId}/x', errors: 'x/y/z/{deviceId}' }));
});
