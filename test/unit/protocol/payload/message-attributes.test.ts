import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PayloadError } from '../../../../protocol/errors.js';
import { addToEvents, addToReadings, messageAttributes } from '../../../../protocol/payload/message-attributes.js';
import type { DeviceEvent, Reading } from '../../../../protocol/payload/types.js';

test("user properties become attributes: a repeated key keeps its last value; the payload's own attribute wins", () => {
  const attrs = messageAttributes([
    ['site', 'a'],
    ['line', '3'],
    ['site', 'b'],
  ]);
  assert.deepEqual(
    [...attrs],
    [
      ['line', '3'],
      ['site', 'b'],
    ],
  );
  const readings: Reading[] = [
    { ts: 1, seq: 1, names: ['v'], values: [1], attributes: null },
    { ts: 2, seq: 2, names: ['v'], values: [2], attributes: ['site', 'own'] },
  ];
  addToReadings(readings, attrs);
  assert.deepEqual(readings[0].attributes, ['line', '3', 'site', 'b']);
  assert.deepEqual(readings[1].attributes, ['line', '3', 'site', 'own']);
  const events: DeviceEvent[] = [{ ts: 1, severityNumber: 9, severityText: 'info', body: 'x', attributes: ['n', 1] }];
  addToEvents(events, attrs);
  assert.deepEqual(events[0].attributes, ['line', '3', 'site', 'b', 'n', 1]);
});

test('more than 64 user properties, an empty or overlong key, or an overlong value is refused naming the bound', () => {
  const many = Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'] as [string, string]);
  assert.throws(
    () => messageAttributes(many),
    (e: PayloadError) => /at most 64/.test(e.message),
  );
  assert.throws(() => messageAttributes([['', 'v']]), PayloadError);
  assert.throws(() => messageAttributes([['k'.repeat(129), 'v']]), /1 to 128 characters/);
  assert.throws(() => messageAttributes([['k', 'v'.repeat(4097)]]), /user property "k": .*at most 4096 characters/);
});
