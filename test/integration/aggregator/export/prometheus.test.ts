import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startAggregator } from '../../../helpers/aggregator-process.js';
import { Prometheus, promtoolCheck } from '../../../helpers/prometheus.js';
import { waitFor } from '../../../helpers/ports.js';
import { tempDir } from '../../../helpers/tmp.js';
import { sendBatch } from '../../../helpers/uplink-client.js';
import { MetricsEncoder } from '../../../../protocol/otlp/metrics-encoder.js';
import { AckStatus } from '../../../../protocol/uplink/messages.js';

test('remote write to a real Prometheus: every exported series and value can be queried, named per the OpenTelemetry rules; Prometheus scrapes the node and promtool accepts its /metrics', async (t) => {
  const dir = tempDir(t);
  const prom = new Prometheus(dir);
  await prom.start();
  t.after(() => prom.stop());
  const agg = await startAggregator(dir, {
    export: [
      {
        protocol: 'prometheus_remote_write',
        endpoint: `${prom.url}/api/v1/write`,
        batch: { max_delay: '100ms' },
        resource_labels: ['site'],
      },
      {
        name: 'rollups',
        protocol: 'prometheus_remote_write',
        mode: 'rollup',
        endpoint: `${prom.url}/api/v1/write`,
        batch: { max_delay: '100ms' },
      },
    ],
  });
  t.after(() => agg.kill9());

  // Uplinked readings of two devices: ten readings each, one a second, ending now.
  const now = Math.floor(Date.now() / 1000) * 1000;
  const enc = new MetricsEncoder({ gatewayId: 'gw-prom', attributes: { site: 'plant-7' } });
  const devices = ['dev-a', 'dev-b'].map((deviceId, d) => ({
    deviceId,
    readings: Array.from({ length: 10 }, (_, i) => ({
      ts: now - (9 - i) * 1000,
      seq: i + 1,
      names: ['temperature', 'humidity'],
      values: [20 + d + i / 10, 40 + i],
      attributes: null,
    })),
  }));
  // dev-r: three readings in the minute before last, one in the last: the first minute closes (rollup export).
  const m = Math.floor(now / 60_000) * 60_000 - 120_000;
  devices.push({
    deviceId: 'dev-r',
    readings: [10_000, 20_000, 30_000, 65_000].map((off, i) => ({
      ts: m + off,
      seq: i + 1,
      names: ['temperature', 'humidity'],
      values: [[5, 9, 7, 1][i], 50],
      attributes: null,
    })),
  });
  const r = await sendBatch(`127.0.0.1:${agg.grpcPort}`, {
    agentId: 'gw-prom',
    seq: 1,
    payload: enc.encode(devices),
    points: 60,
  });
  assert.equal(r.ack?.status, AckStatus.OK, r.err?.message ?? r.ack?.reason);

  // OTLP/JSON from a service (no device.id): a monotonic counter in bytes and a histogram in ms.
  const nanos = (ms: number) => `${BigInt(ms) * 1_000_000n}`;
  const res = await fetch(`http://127.0.0.1:${agg.otlpHttpPort}/v1/metrics`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      resourceMetrics: [
        {
          resource: {
            attributes: [
              { key: 'service.name', value: { stringValue: 'gateway-svc' } },
              { key: 'service.instance.id', value: { stringValue: 'i-1' } },
              { key: 'host.arch', value: { stringValue: 'arm64' } },
            ],
          },
          scopeMetrics: [
            {
              metrics: [
                {
                  name: 'net.sent',
                  unit: 'By',
                  sum: {
                    isMonotonic: true,
                    aggregationTemporality: 2,
                    dataPoints: [
                      {
                        asInt: '4096',
                        timeUnixNano: nanos(now),
                        attributes: [{ key: 'if', value: { stringValue: 'eth0' } }],
                      },
                    ],
                  },
                },
                {
                  name: 'uplink.latency',
                  unit: 'ms',
                  histogram: {
                    aggregationTemporality: 2,
                    dataPoints: [
                      {
                        timeUnixNano: nanos(now),
                        count: '4',
                        sum: 70,
                        bucketCounts: ['1', '2', '1'],
                        explicitBounds: [10, 25],
                      },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
    }),
  });
  assert.equal(res.status, 200, await res.text());

  const temp = await waitFor(
    'temperature of dev-a in Prometheus',
    async () => {
      const s = await prom.samples('temperature{device_id="dev-a"}', now - 10_000, now);
      return s.length === 10 ? s : null;
    },
    20_000,
  );
  assert.deepEqual(
    temp.map((s) => s.v),
    devices[0].readings.map((x) => x.values[0]),
    'every value, in order',
  );
  assert.deepEqual(
    temp.map((s) => s.t),
    devices[0].readings.map((x) => x.ts),
    'at the readings’ timestamps',
  );
  const hum = await prom.samples('humidity{device_id="dev-b"}', now - 10_000, now);
  assert.deepEqual(
    hum.map((s) => s.v),
    devices[1].readings.map((x) => x.values[1]),
  );
  const labels = (await prom.query('humidity{device_id="dev-b"}'))[0].metric;
  assert.equal(labels.site, 'plant-7', 'a configured resource label');
  assert.equal(labels.job, 'iot-device', 'job from service.name');
  const seq = await prom.samples('otlp_edge_device_seq{device_id="dev-a"}', now - 10_000, now);
  assert.deepEqual(
    seq.map((s) => s.v),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
  );

  const counter = await waitFor('the counter', async () => (await prom.query('net_sent_bytes_total'))[0]);
  assert.equal(counter.value, 4096);
  assert.deepEqual(
    { job: counter.metric.job, instance: counter.metric.instance, if: counter.metric.if },
    { job: 'gateway-svc', instance: 'i-1', if: 'eth0' },
  );
  const buckets = await prom.query('uplink_latency_milliseconds_bucket');
  assert.deepEqual(
    Object.fromEntries(buckets.map((b) => [b.metric.le, b.value])),
    { '10': 1, '25': 3, '+Inf': 4 },
    'cumulative buckets',
  );
  assert.equal((await prom.query('uplink_latency_milliseconds_sum'))[0].value, 70);
  assert.equal((await prom.query('uplink_latency_milliseconds_count'))[0].value, 4);
  // The rollup exporter: dev-r's closed minute as a summary and its last value, at the minute's end.
  const count = await waitFor('the rollup', async () => (await prom.query('temperature_count{device_id="dev-r"}'))[0]);
  assert.equal(count.value, 3);
  assert.equal((await prom.query('temperature_sum{device_id="dev-r"}'))[0].value, 21);
  assert.equal((await prom.query('temperature{device_id="dev-r",quantile="0"}'))[0].value, 5);
  assert.equal((await prom.query('temperature{device_id="dev-r",quantile="1"}'))[0].value, 9);
  assert.equal((await prom.query('temperature_last{device_id="dev-r"}'))[0].value, 7);
  const info = await prom.query('target_info{job="gateway-svc"}');
  assert.equal(info[0]?.metric.host_arch, 'arm64', 'other resource attributes on target_info');

  // The exposition format of the node's /metrics, checked by Prometheus' own tool.
  const exposition = await (await fetch(`http://127.0.0.1:${agg.apiPort}/metrics`)).text();
  const check = promtoolCheck(exposition);
  assert.doesNotMatch(check.output, /pars/i, 'the exposition parses');
  // promtool's only findings are prom-client's own process gauges named *_total (not ours to rename).
  const findings = check.output.split('\n').filter((l) => l.trim() !== '');
  assert.deepEqual(
    findings.filter((l) => !/^otlp_edge_aggregator_nodejs_active_(handles|requests|resources)_total /.test(l)),
    [],
    check.output,
  );
  assert.match(exposition, /otlp_edge_aggregator_export_sent_points_total\{exporter="prometheus_remote_write"\} [1-9]/);
});

test('Prometheus scrapes an aggregator node: its /metrics parse and the series are queryable', async (t) => {
  const dir = tempDir(t);
  const agg = await startAggregator(dir);
  t.after(() => agg.kill9());
  const prom = new Prometheus(dir, [`127.0.0.1:${agg.apiPort}`]);
  await prom.start();
  t.after(() => prom.stop());
  const up = await waitFor('a successful scrape', async () => (await prom.query('up'))[0]?.value === 1, 20_000);
  assert.ok(up);
  const v = await prom.query('otlp_edge_aggregator_ring_version');
  assert.equal(v.length, 1);
  assert.equal((await prom.query('scrape_samples_post_metric_relabeling'))[0].value > 50, true);
});
