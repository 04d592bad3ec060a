import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Fleet, FleetOptionsError, resolveFleetOptions } from '../../../../simulators/fleet/fleet.js';
import { fleetOptionsFromArgs } from '../../../../simulators/fleet/cli.js';

test('defaults: one reading per device per second, QoS 1, JSON flat, epoch ms, default topics', () => {
  const o = resolveFleetOptions({ devices: 50 });
  assert.equal(o.rate, 50);
  assert.equal(o.qos, 1);
  assert.equal(o.url, 'mqtt://127.0.0.1:1883');
  assert.deepEqual(
    [o.encoding, o.shape, o.tsFormat, o.readingsPerMessage, o.maxInFlight, o.eventRate],
    ['json', 'flat', 'ms', 1, 20, 0.001],
  );
  assert.equal(o.topics.telemetry, 'devices/{deviceId}/telemetry');
  assert.ok(Object.isFrozen(o));
});

test('every invalid option is reported at once, each with what was expected', () => {
  assert.throws(
    () => resolveFleetOptions({ devices: 0, qos: 3 as never, url: 'http://x', topics: { events: 'no/placeholder' } }),
    (e: unknown) => {
      assert.ok(e instanceof FleetOptionsError);
      assert.equal(e.code, 'OTLPEDGE_SIM_BAD_OPTION');
      assert.deepEqual(
        e.problems.map((p) => p.option),
        ['url', 'devices', 'qos', 'topics'],
      );
      assert.match(e.message, /qos: expected 0, 1 or 2, got 3/);
      return true;
    },
  );
});

test('device ids are the prefix and a zero-padded index, all valid device ids', () => {
  assert.deepEqual(new Fleet({ devices: 12 }).deviceIds.slice(0, 3), ['sim-00', 'sim-01', 'sim-02']);
  assert.deepEqual(new Fleet({ devices: 2, prefix: 'gw7.', firstIndex: 999 }).deviceIds, ['gw7.0999', 'gw7.1000']);
  assert.throws(() => new Fleet({ prefix: 'a b' }), /prefix: expected up to 100 characters/);
});

test('flags map onto options; durations take units; the password may come from the environment', () => {
  const { options, json, quiet } = fleetOptionsFromArgs(
    [
      '--devices',
      '10',
      '--rate',
      '500',
      '--qos',
      '0',
      '--duration',
      '2m',
      '--ts',
      'rfc3339',
      '--mqtt',
      '5',
      '--insecure',
      '--json',
      '--quiet',
    ],
    { OTLP_EDGE_SIM_PASSWORD: 's3cret' },
  );
  assert.equal(options.devices, 10);
  assert.equal(options.rate, 500);
  assert.equal(options.qos, 0);
  assert.equal(options.duration, 120);
  assert.equal(options.tsFormat, 'rfc3339');
  assert.equal(options.protocolVersion, 5);
  assert.equal(options.rejectUnauthorized, false);
  assert.equal(options.password, 's3cret');
  assert.equal(json && quiet, true);
  assert.equal(fleetOptionsFromArgs(['--duration', '30']).options.duration, 30);
  assert.throws(() => fleetOptionsFromArgs(['--rate', '']), /--rate: expected a number > 0, got ''/);
});
