import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig, variants } from '../../../../protocol/config/schema.js';
import type { DeviceEvent, Reading } from '../../../../protocol/payload/types.js';
import { checkProcessors, RecordProcessors } from '../../../../runtime/processors/chain.js';
import { Selected, Selector } from '../../../../runtime/processors/select.js';
import { attributesSpec, redactionSpec, selectSpec } from '../../../../runtime/processors/spec.js';

const spec = variants({ attributes: attributesSpec, redaction: redactionSpec });

function build(list: unknown[]): RecordProcessors {
  const { config, problems } = validateConfig(spec, list, { env: {} });
  assert.deepEqual(problems, []);
  assert.deepEqual(checkProcessors(config, 'processors', { topics: true }), []);
  return RecordProcessors.build(config, 'processors', { applied: () => () => {}, redacted: () => () => {} })!;
}

const reading = (names: string[], seq = 7): Reading => ({
  ts: 1,
  seq,
  names,
  values: names.map((_, i) => i),
  attributes: ['fw', '1.0'],
});

test('no record processor configured: nothing to call', () => {
  const { config } = validateConfig(spec, [], { env: {} });
  assert.equal(
    RecordProcessors.build(config, 'processors', { applied: () => () => {}, redacted: () => () => {} }),
    null,
  );
});

test('a processor selecting metrics moves their points to a reading of their own, without the seq', () => {
  const p = build([{ attributes: { include: { metrics: ['temp*'] }, actions: [{ key: 'unit', value: 'C' }] } }]);
  const out = p.readings('d1', 'devices/d1/telemetry', [reading(['temp', 'hum', 'temp2']), reading(['hum'])]);
  assert.deepEqual(
    out.map((r) => [r.names, r.seq, r.attributes]),
    [
      [['hum'], 7, ['fw', '1.0']],
      [['temp', 'temp2'], -1, ['fw', '1.0', 'unit', 'C']],
      [['hum'], 7, ['fw', '1.0']],
    ],
  );
  assert.deepEqual(out[1].values, [0, 2]);
  const whole = p.readings('d1', 't', [reading(['temp'])]);
  assert.deepEqual([whole[0].seq, whole[0].attributes], [7, ['fw', '1.0', 'unit', 'C']], 'all chosen: no split');
  const event: DeviceEvent = { ts: 1, severityNumber: 9, severityText: 'info', body: 'x', attributes: null };
  assert.deepEqual(p.events('d1', 't', [event])[0].attributes, null, 'events are not metrics');
});

test('include and exclude by device and topic; the Resource by device only', () => {
  const p = build([
    {
      attributes: {
        include: { devices: ['plant-*'] },
        exclude: { topics: ['devices/+/events'] },
        actions: [{ key: 'x', value: '1', action: 'insert' }],
      },
    },
    { attributes: { include: { devices: ['plant-1'] }, actions: [{ key: 'site', value: 's', scope: 'resource' }] } },
  ]);
  assert.deepEqual(p.readings('plant-1', 'devices/plant-1/telemetry', [reading(['a'])])[0].attributes, [
    'fw',
    '1.0',
    'x',
    '1',
  ]);
  assert.deepEqual(p.readings('lab-1', 'devices/lab-1/telemetry', [reading(['a'])])[0].attributes, ['fw', '1.0']);
  const e: DeviceEvent = { ts: 1, severityNumber: 9, severityText: 'info', body: 'b', attributes: null };
  assert.equal(p.events('plant-1', 'devices/plant-1/events', [e])[0].attributes, null, 'excluded by topic');
  assert.deepEqual(p.resource('plant-1', ['service.name', 'iot']), ['service.name', 'iot', 'site', 's']);
  assert.deepEqual(p.resource('plant-2', ['service.name', 'iot']), ['service.name', 'iot']);
  assert.equal(p.changesResources, true);
});

test('a selector with only exclude metrics keeps events and leaves the excluded metrics alone', () => {
  const sel = (input: unknown) => validateConfig(selectSpec(''), input, { env: {} }).config;
  const s = new Selector(sel({}), sel({ metrics: ['secret*'] }));
  assert.equal(s.select('d', 't'), Selected.METRICS);
  assert.equal(s.allMetrics, true);
  assert.equal(s.metric('d', 't', 'secret_x'), false);
  assert.equal(s.metric('d', 't', 'temp'), true);
});

test('topics cannot select where data has none (the aggregator)', () => {
  const { config } = validateConfig(spec, [{ redaction: { include: { topics: ['a/#'] } } }], { env: {} });
  assert.match(checkProcessors(config, 'processors', { topics: false })[0].path, /include\.topics$/);
});

test('readings with the same attributes share one result, and every reading is counted', () => {
  const counted: string[] = [];
  const { config } = validateConfig(
    spec,
    [{ attributes: { actions: [{ key: 'line', value: 'l-1', action: 'insert' }] } }, { redaction: {} }],
    { env: {} },
  );
  const p = RecordProcessors.build(config, 'processors', {
    applied: (proc, action) => () => void counted.push(`${proc} ${action}`),
    redacted: (proc, detector) => () => void counted.push(`${proc} ${detector}`),
  })!;
  const bare = (): Reading => ({ ts: 1, seq: 1, names: ['a'], values: [1], attributes: null });
  const withMail = (): Reading => ({ ...bare(), attributes: ['to', 'ops@example.com'] });
  const out = p.readings('d', 't', [bare(), bare(), withMail(), withMail()]);
  assert.equal(out[0].attributes, out[1].attributes, 'one list for both');
  assert.deepEqual(out[0].attributes, ['line', 'l-1']);
  assert.deepEqual(out[3].attributes, ['to', '****', 'line', 'l-1']);
  assert.deepEqual(counted, [...Array(4).fill('processors[0] insert'), 'processors[1] email', 'processors[1] email']);
});
