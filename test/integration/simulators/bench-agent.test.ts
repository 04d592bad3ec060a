import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { benchAgent } from '../../../simulators/bench/agent.js';
import { table } from '../../../simulators/bench/report.js';

const hasProc = existsSync('/proc/self/stat');
const hasMosquitto = [
  '/usr/sbin/mosquitto',
  '/usr/bin/mosquitto',
  '/usr/local/sbin/mosquitto',
  '/usr/local/bin/mosquitto',
].some(existsSync);

// Correctness only: a short run on a shared machine says nothing about speed.
test(
  'bench agent reports every figure at QoS 0 and 1, each finite and positive, beside its baselines',
  { timeout: 120_000 },
  async () => {
    const report = await benchAgent({ devices: 50, seconds: 2, warmup: 1, rate: 20_000 });
    const text = table(report);
    assert.equal(report.bench, 'agent');

    const names = report.rows.map((r) => r.name);
    const expected = [
      'agent ingest, QoS 0, stored',
      'bare aedes, QoS 0, publishes taken',
      'agent RSS, QoS 0, under load',
      'agent connect of all devices under load, QoS 0',
      'agent points per stored batch, QoS 0',
      'agent stored bytes per reading, QoS 0',
      'agent LevelDB dir bytes per reading, QoS 0',
      'agent ingest, QoS 1 durable before ack, stored',
      'bare aedes, QoS 1, publishes taken',
      'agent ack latency p50, QoS 1',
      'agent ack latency p99, QoS 1',
      'agent RSS, QoS 1, under load',
      'agent connect of all devices under load, QoS 1',
      'agent points per stored batch, QoS 1',
      'agent stored bytes per reading, QoS 1',
      'agent LevelDB dir bytes per reading, QoS 1',
      'cores shared by the fleet and the broker under test',
      'agent ingest with processors (attributes on the Resource and on points, redaction), QoS 0, stored',
    ];
    expected.push(
      hasMosquitto
        ? 'agent ingest, QoS 1 durable before ack, MQTT 5, vs mosquitto relay'
        : 'agent ingest, QoS 1 durable before ack, MQTT 5',
    );
    if (hasProc) expected.push('agent readings per CPU second, QoS 1, MQTT 5 vs 3.1.1');
    if (hasProc)
      expected.push(
        'agent readings per CPU second, QoS 0',
        'agent readings per CPU second, QoS 1',
        'agent readings per CPU second with processors, QoS 0',
      );
    if (hasMosquitto) {
      expected.push(
        'agent ingest, QoS 0, vs mosquitto relay',
        'mosquitto relay, QoS 0, delivered to subscriber',
        'agent ingest, QoS 1, vs mosquitto relay',
        'mosquitto relay, QoS 1, delivered to subscriber',
      );
      if (hasProc)
        expected.push(
          'agent readings per CPU second, QoS 0, vs mosquitto',
          'agent readings per CPU second, QoS 1, vs mosquitto',
        );
    }
    assert.deepEqual([...names].sort(), [...expected].sort(), text);

    for (const row of report.rows) {
      assert.ok(Number.isFinite(row.value) && row.value > 0, `${row.name}: ${row.value}\n${text}`);
      if (row.baseline)
        assert.ok(
          Number.isFinite(row.baseline.value) && row.baseline.value > 0,
          `${row.name} baseline ${row.baseline.name}: ${row.baseline.value}\n${text}`,
        );
    }
    const ingest = report.rows.find((r) => r.name === 'agent ingest, QoS 0, stored')!;
    assert.equal(ingest.baseline?.name, 'bare aedes');
    assert.deepEqual(ingest.budget, { op: '>=', bound: 50_000 });
    const qos1 = report.rows.find((r) => r.name === 'agent ingest, QoS 1 durable before ack, stored')!;
    assert.deepEqual(qos1.budget, { op: '>=', bound: 25_000 });
    // Every row with a budget is judged (the table's verdict column), and judged against its own figure.
    for (const r of report.rows.filter((r) => r.budget && !r.budget.ratio))
      assert.equal(r.pass, r.budget!.op === '>=' ? r.value >= r.budget!.bound : r.value <= r.budget!.bound, r.name);
    assert.match(text, /budgets kept/);
    // A reading is ~127 B of JSON; stored as zstd OTLP it must be smaller, and the LevelDB dir holds at least that.
    for (const qos of [0, 1]) {
      const stored = report.rows.find((r) => r.name === `agent stored bytes per reading, QoS ${qos}`)!;
      const onDisk = report.rows.find((r) => r.name === `agent LevelDB dir bytes per reading, QoS ${qos}`)!;
      assert.ok(stored.value < stored.baseline!.value, text);
      assert.ok(onDisk.value >= stored.value * 0.9, text);
    }
  },
);
