import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AlertEngine } from '../../../../aggregator/alerts/engine.js';
import { compare, resourceLabels, type AlertChange } from '../../../../aggregator/alerts/alert.js';
import { globTest } from '../../../../protocol/glob.js';
import { Device, LATEST_TS, LATEST_VALUE, SLOT } from '../../../../aggregator/device/device-record.js';
import { aggregatorConfigSpec, crossCheck } from '../../../../aggregator/config.js';
import { validateConfig } from '../../../../protocol/config/schema.js';
import { MetricsEncoder } from '../../../../protocol/otlp/metrics-encoder.js';
import { visitMetricsRequest } from '../../../../protocol/otlp/visit.js';

const T0 = 1_800_000_000_000;

function alertsConfig(alerts: Record<string, unknown>) {
  const r = validateConfig(aggregatorConfigSpec, { alerts }, { env: {} });
  assert.deepEqual([...r.problems, ...crossCheck(r.config)], []);
  return r.config.alerts;
}

function device(id: string, lastSeen: number, latest: Record<string, number> = {}): Device {
  const d = new Device(id);
  d.lastSeen = lastSeen;
  for (const [name, v] of Object.entries(latest)) {
    const o = d.slotOf(name) * SLOT;
    d.m[o + LATEST_VALUE] = v;
    d.m[o + LATEST_TS] = lastSeen;
  }
  return d;
}

function engine(alerts: Record<string, unknown>, owns: (id: string) => boolean = () => true) {
  const changes: AlertChange[] = [];
  const e = new AlertEngine(alertsConfig(alerts), {
    offlineAfterMs: 60_000,
    owns,
    onChanges: (c) => changes.push(...c.map((x) => ({ alert: { ...x.alert }, status: x.status }))),
  });
  const take = () => changes.splice(0).map((c) => `${c.status} ${c.alert.alertname} ${c.alert.device}`);
  return { e, take };
}

test('DeviceOffline fires once a device is silent past offline_after, and resolves when it speaks again', () => {
  const { e, take } = engine({ missing: { enabled: false } });
  const d = device('d1', T0);
  e.evaluate([d], T0 + 59_000);
  assert.deepEqual(take(), []);
  e.evaluate([d], T0 + 61_000);
  assert.deepEqual(take(), ['firing DeviceOffline d1']);
  const a = e.list()[0];
  assert.equal(a.startsAt, T0 + 60_000, 'it began when the silence passed offline_after');
  assert.equal(a.labels.device_id, 'd1');
  assert.equal(a.labels.alertname, 'DeviceOffline');
  assert.equal(a.labels.severity, 'warning');
  e.evaluate([d], T0 + 70_000);
  assert.deepEqual(take(), [], 'firing is said once');
  d.lastSeen = T0 + 75_000;
  e.evaluate([d], T0 + 76_000);
  assert.deepEqual(take(), ['resolved DeviceOffline d1']);
  assert.equal(e.list().length, 0);
});

test("a rule fires when the latest value compares true for `for`, resolves when it stops, and an offline device's rule alerts resolve", () => {
  const { e, take } = engine({
    offline: { enabled: false },
    missing: { enabled: false },
    rules: [{ name: 'Hot', metric: 'temp', devices: 'pump-*', op: '>=', value: 80, for: '30s', severity: 'critical' }],
  });
  const hot = device('pump-1', T0, { temp: 85 });
  const other = device('fan-1', T0, { temp: 99 });
  e.evaluate([hot, other], T0 + 1000);
  assert.deepEqual(take(), [], 'pending until it held for 30 s; fan-1 is not covered by pump-*');
  assert.equal(e.list()[0].state, 'pending');
  e.evaluate([hot, other], T0 + 20_000);
  assert.deepEqual(take(), []);
  e.evaluate([hot, other], T0 + 31_000);
  assert.deepEqual(take(), ['firing Hot pump-1']);
  assert.equal(e.list()[0].severity, 'critical');
  assert.equal(e.list()[0].value, 85);
  hot.m[hot.slotOf('temp') * SLOT + LATEST_VALUE] = 70;
  e.evaluate([hot, other], T0 + 32_000);
  assert.deepEqual(take(), ['resolved Hot pump-1']);
  // Breaching again starts a new pending period; a device gone offline resolves it.
  hot.m[hot.slotOf('temp') * SLOT + LATEST_VALUE] = 90;
  hot.lastSeen = T0 + 40_000;
  e.evaluate([hot], T0 + 40_000);
  e.evaluate([hot], T0 + 75_000);
  assert.deepEqual(take(), ['firing Hot pump-1']);
  e.evaluate([hot], T0 + 101_000);
  assert.deepEqual(take(), ['resolved Hot pump-1']);
});

test('DeviceMissingReadings fires when missing rises, and resolves when the gaps fill or after resolve_after', () => {
  const { e, take } = engine({ offline: { enabled: false }, missing: { resolve_after: '5m' } });
  const d = device('d1', T0);
  d.seq.counts.missing = 3; // missing before this node first looked: taken as given
  e.evaluate([d], T0);
  assert.deepEqual(take(), []);
  d.seq.counts.missing = 5;
  d.lastSeen = T0 + 5000;
  e.evaluate([d], T0 + 5000);
  assert.deepEqual(take(), ['firing DeviceMissingReadings d1']);
  assert.match(e.list()[0].annotations.summary, /2 readings missing/);
  d.seq.counts.missing = 3; // the late readings arrived
  e.evaluate([d], T0 + 6000);
  assert.deepEqual(take(), ['resolved DeviceMissingReadings d1']);
  d.seq.counts.missing = 4;
  e.evaluate([d], T0 + 7000);
  assert.deepEqual(take(), ['firing DeviceMissingReadings d1']);
  e.evaluate([d], T0 + 7000 + 299_000);
  assert.deepEqual(take(), []);
  e.evaluate([d], T0 + 7000 + 300_000);
  assert.deepEqual(take(), ['resolved DeviceMissingReadings d1'], 'no new gap for resolve_after');
});

test('only the owner raises alerts: a device that moved is dropped without a resolve, a deleted one resolves', () => {
  let owned = new Set(['d1', 'd2']);
  const { e, take } = engine({ missing: { enabled: false } }, (id) => owned.has(id));
  const d1 = device('d1', T0);
  const d2 = device('d2', T0);
  const d3 = device('d3', T0);
  e.evaluate([d1, d2, d3], T0 + 61_000);
  assert.deepEqual(take().sort(), ['firing DeviceOffline d1', 'firing DeviceOffline d2'], 'd3 is not ours');
  owned = new Set(['d2']);
  e.evaluate([d1, d2], T0 + 62_000);
  assert.deepEqual(take(), [], 'd1 moved: the new owner raises it with the same labels');
  assert.deepEqual(
    e.list().map((a) => a.device),
    ['d2'],
  );
  e.evaluate([], T0 + 63_000);
  assert.deepEqual(take(), ['resolved DeviceOffline d2'], 'd2 was deleted on its owner');
});

test('max_active bounds the alerts held; the rest are counted', () => {
  let over = 0;
  const e = new AlertEngine(alertsConfig({ max_active: 2, missing: { enabled: false } }), {
    offlineAfterMs: 60_000,
    owns: () => true,
    onChanges: () => undefined,
    onOverflow: () => over++,
  });
  e.evaluate(
    ['a', 'b', 'c', 'd'].map((id) => device(id, T0)),
    T0 + 61_000,
  );
  assert.equal(e.list().length, 2);
  assert.equal(over, 2);
});

test("alert labels carry the device's resource attributes (the gateway, site) as Prometheus label names", () => {
  const otlp = new MetricsEncoder({ gatewayId: 'gw-7', attributes: { site: 'plant-3' } }).encode([
    { deviceId: 'd1', readings: [{ ts: T0, seq: 1, names: ['t'], values: [1], attributes: null }] },
  ]);
  const d = device('d1', T0);
  visitMetricsRequest(otlp, {
    resource: (_id, r) => r && d.setResource(r),
    point: () => undefined,
  });
  const { e } = engine({ missing: { enabled: false }, labels: { cluster: 'eu-1' } });
  e.evaluate([d], T0 + 61_000);
  const labels = e.list()[0].labels;
  assert.equal(labels.otlp_edge_gateway_id, 'gw-7');
  assert.equal(labels.site, 'plant-3');
  assert.equal(labels.cluster, 'eu-1');
  assert.equal(labels.device_id, 'd1');
  assert.equal(labels['device.id'], undefined);
  assert.deepEqual(resourceLabels({ '9lives': 1, __name__: 'x', 'a-b': true }), {
    _9lives: '1',
    _name__: 'x',
    a_b: 'true',
  });
});

test('globs and comparisons', () => {
  assert.equal(globTest('pump-*')('pump-12'), true);
  assert.equal(globTest('pump-*')('xpump-1'), false);
  assert.equal(globTest('p?mp')('pump'), true);
  assert.equal(globTest('a.b')('axb'), false, 'regex characters are literal');
  assert.equal(globTest('*')('anything'), true);
  assert.equal(compare(1, '!=', 2), true);
  assert.equal(compare(2, '==', 2), true);
  assert.equal(compare(2, '<', 2), false);
  assert.equal(compare(2, '<=', 2), true);
});

test('alert config: rules need a name and a metric, names are unique, URLs are URLs', () => {
  const r = validateConfig(
    aggregatorConfigSpec,
    {
      alerts: {
        rules: [
          { metric: 'temp' },
          { name: 'Hot' },
          { name: 'Hot', metric: 't' },
          { name: 'DeviceOffline', metric: 't' },
        ],
        alertmanager: { url: 'alertmanager:9093' },
        webhooks: { url: 'ftp://x' },
        labels: { 'bad-name': 'x' },
      },
    },
    { env: {} },
  );
  assert.deepEqual(r.problems, []);
  const paths = crossCheck(r.config)
    .map((p) => p.path)
    .sort();
  assert.deepEqual(paths, [
    'alerts.alertmanager.url',
    'alerts.labels.bad-name',
    'alerts.rules[0].name',
    'alerts.rules[1].metric',
    'alerts.rules[2].name',
    'alerts.rules[3].name',
    'alerts.webhooks.url',
  ]);
});
