import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { ProtoError } from '../../../../protocol/errors.js';
import { decodePayload, encodeCommand, scalarOf } from '../../../../protocol/sparkplug/payload.js';
import { toReadings } from '../../../../protocol/sparkplug/readings.js';
import { parseTopic, renderId } from '../../../../protocol/sparkplug/topic.js';

/** Eclipse Tahu's JavaScript codec (the one sparkplug-client publishes with): payloads from a peer we did not write. */
const tahu = createRequire(import.meta.url)('sparkplug-payload').get('spBv1.0') as {
  encodePayload(p: unknown): Uint8Array;
  decodePayload(b: Uint8Array): { metrics: { name: string; value: unknown; type: string }[] };
};

test('every scalar datatype, encoded by Tahu, is read back with its value and sign', () => {
  const cases: [string, unknown, number | string][] = [
    ['Int8', -5, -5],
    ['Int16', -300, -300],
    ['Int32', -70000, -70000],
    ['Int64', -5_000_000_000, -5_000_000_000],
    ['UInt8', 250, 250],
    ['UInt16', 65000, 65000],
    ['UInt32', 4_000_000_000, 4_000_000_000],
    ['UInt64', 9_000_000_000, 9_000_000_000],
    ['Float', 1.5, 1.5],
    ['Double', 21.123456789, 21.123456789],
    ['Boolean', true, 1],
    ['String', 'running', 'running'],
    ['Text', 'a longer text', 'a longer text'],
    ['DateTime', 1732280000000, 1732280000000],
  ];
  const bytes = tahu.encodePayload({
    timestamp: 1732280000000,
    seq: 7,
    metrics: cases.map(([type, value], i) => ({ name: `m${i}`, alias: i + 1, type, value })),
  });
  const p = decodePayload(bytes);
  assert.equal(p.timestamp, 1732280000000);
  assert.equal(p.seq, 7);
  assert.deepEqual(
    p.metrics.map((m) => scalarOf(m.value, m.datatype!)),
    cases.map((c) => c[2]),
  );
  assert.deepEqual(
    p.metrics.map((m) => m.alias),
    cases.map((_, i) => i + 1),
  );
});

test('metrics become readings by timestamp: strings as attributes, templates flattened, historical at their time', () => {
  const bytes = tahu.encodePayload({
    timestamp: 2000,
    seq: 1,
    metrics: [
      { name: 'bdSeq', type: 'UInt64', value: 3 },
      { name: 'Node Control/Rebirth', type: 'Boolean', value: false },
      { name: 'Inputs/Pressure', type: 'Double', value: 2.5 },
      { name: 'State', type: 'String', value: 'running' },
      { name: 'Inputs/Pressure', type: 'Double', value: 1.5, timestamp: 1000, isHistorical: true },
      {
        name: 'Motor',
        type: 'Template',
        value: {
          templateRef: 'MotorType',
          isDefinition: false,
          metrics: [
            { name: 'Speed', type: 'Int32', value: 1200 },
            { name: 'Amps', type: 'Float', value: 3.25 },
          ],
        },
      },
      { name: 'Gone', type: 'Double', value: null, isNull: true },
      { name: 'Scratch', type: 'Double', value: 9, isTransient: true },
      { name: 'Blob', type: 'Bytes', value: new Uint8Array([1, 2]) },
      { name: 'Essay', type: 'String', value: 'x'.repeat(5000) },
    ],
  });
  const p = decodePayload(bytes);
  const { readings, skipped } = toReadings(p, (m) => ({ name: m.name!, datatype: m.datatype! }), 9999);
  assert.deepEqual(
    readings.map((r) => [r.ts, r.names, r.values, r.attributes]),
    [
      [2000, ['Inputs/Pressure', 'Motor/Speed', 'Motor/Amps'], [2.5, 1200, 3.25], ['State', 'running']],
      [1000, ['Inputs/Pressure'], [1.5], null],
    ],
  );
  assert.deepEqual(
    skipped.map((s) => [s.name, s.reason]),
    [
      ['Gone', 'null'],
      ['Scratch', 'transient'],
      ['Blob', 'unsupported_type'],
      ['Essay', 'bad_string'],
    ],
  );
});

test('a truncated or hostile payload is a ProtoError, not a crash', () => {
  const good = tahu.encodePayload({ timestamp: 1, seq: 0, metrics: [{ name: 'x', type: 'Double', value: 1 }] });
  let refused = 0;
  for (let cut = 1; cut < good.length; cut++) {
    try {
      decodePayload(good.subarray(0, cut)); // a cut at a field boundary is a shorter, valid payload
    } catch (e) {
      assert.ok(e instanceof ProtoError, `cut at ${cut}: ${String(e)}`);
      refused++;
    }
  }
  assert.ok(refused > good.length / 2, `most cuts are refused (${refused} of ${good.length - 1})`);
  // templates nested past 16 levels
  let nested: unknown = { name: 'leaf', type: 'Int32', value: 1 };
  for (let i = 0; i < 20; i++) nested = { name: `t${i}`, type: 'Template', value: { metrics: [nested] } };
  assert.throws(() => decodePayload(tahu.encodePayload({ metrics: [nested] })), /deeper than 16/);
});

test('the rebirth command is what Tahu reads as Node Control/Rebirth = true', () => {
  const decoded = tahu.decodePayload(encodeCommand(1732280000000, [{ name: 'Node Control/Rebirth', value: true }]));
  assert.deepEqual(
    decoded.metrics.map((m) => [m.name, m.value, m.type]),
    [['Node Control/Rebirth', true, 'Boolean']],
  );
});

test('topics: node and device messages, STATE, and what breaks the rules', () => {
  assert.deepEqual(parseTopic('spBv1.0', 'spBv1.0/G1/DDATA/plant1/pump1'), {
    group: 'G1',
    type: 'DDATA',
    edgeNode: 'plant1',
    device: 'pump1',
  });
  assert.equal(parseTopic('spBv1.0', 'spBv1.0/STATE/scada-1'), 'state');
  for (const bad of ['spBv1.0/G1/NDATA/plant1/pump1', 'spBv1.0/G1/DDATA/plant1', 'spBv1.0/G1/XDATA/p', 'spBv1.0/G1'])
    assert.ok(
      typeof parseTopic('spBv1.0', bad) === 'object' && 'invalid' in (parseTopic('spBv1.0', bad) as object),
      bad,
    );
  assert.equal(renderId('{group}:{edge_node}:{device}', { group: 'G1', edgeNode: 'p', device: 'd' }), 'G1:p:d');
});

test('random bytes: the decoder reads a payload or throws a ProtoError, never anything else', () => {
  let seed = 5;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const good = tahu.encodePayload({
    timestamp: 1,
    seq: 3,
    metrics: [{ name: 'm', alias: 1, type: 'Template', value: { metrics: [{ name: 'x', type: 'Int32', value: 1 }] } }],
  });
  for (let i = 0; i < 20_000; i++) {
    const b = Uint8Array.from(good);
    for (let k = 0; k < 1 + rand(4); k++) b[rand(b.length)] = rand(256); // a few bytes flipped
    try {
      const p = decodePayload(b);
      for (const m of p.metrics) scalarOf(m.value, m.datatype ?? 0);
    } catch (e) {
      assert.ok(e instanceof ProtoError, String(e));
    }
  }
});
