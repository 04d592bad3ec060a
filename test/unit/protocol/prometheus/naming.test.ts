import { test } from 'node:test';
import assert from 'node:assert/strict';
import { metricName, sanitizeLabelName, unitSuffix } from '../../../../protocol/prometheus/naming.js';
import { WriteRequestBuilder } from '../../../../protocol/prometheus/remote-write.js';
import { ProtoReader } from '../../../../protocol/otlp/reader.js';

test('metric names follow the OpenTelemetry → Prometheus rules: sanitized, unit suffix, _total on counters', () => {
  assert.equal(metricName('http.server.duration', 'ms', 'histogram'), 'http_server_duration_milliseconds');
  assert.equal(metricName('net.sent', 'By', 'counter'), 'net_sent_bytes_total');
  assert.equal(metricName('requests', '{request}', 'counter'), 'requests_total');
  assert.equal(metricName('cpu.utilization', '1', 'gauge'), 'cpu_utilization_ratio');
  assert.equal(metricName('cpu.utilization', '1', 'counter'), 'cpu_utilization_total');
  assert.equal(metricName('throughput', 'By/s', 'gauge'), 'throughput_bytes_per_second');
  assert.equal(metricName('temperature', 'Cel', 'gauge'), 'temperature_celsius');
  assert.equal(metricName('latency_seconds', 's', 'gauge'), 'latency_seconds', 'a suffix already there is not doubled');
  assert.equal(metricName('jobs_total', '', 'counter'), 'jobs_total');
  assert.equal(metricName('2xx..count', '', 'gauge'), '_2xx_count');
  assert.equal(unitSuffix('furlongs', 'gauge'), 'furlongs', 'an unknown unit is kept, sanitized');
});

test('label names are sanitized: dots to _, a leading digit gets key_, a leading __ is not reserved', () => {
  assert.equal(sanitizeLabelName('device.id'), 'device_id');
  assert.equal(sanitizeLabelName('9lives'), 'key_9lives');
  assert.equal(sanitizeLabelName('__secret'), 'key__secret');
  assert.equal(sanitizeLabelName('ok_name'), 'ok_name');
});

/** The WriteRequest as [labels as "k=v,…", [t, v]…] per series (an independent reading of the bytes). */
function readWriteRequest(bytes: Uint8Array): Map<string, [number, number][]> {
  const out = new Map<string, [number, number][]>();
  const r = new ProtoReader(bytes);
  r.fields(r.end, (f, w) => {
    if (f !== 1 || w !== 2) return r.skip(w);
    const labels: string[] = [];
    const samples: [number, number][] = [];
    r.fields(r.submessageEnd(), (sf, sw) => {
      if (sf === 1) {
        let n = '';
        let v = '';
        r.fields(r.submessageEnd(), (lf, lw) => {
          if (lf === 1 && lw === 2) n = r.string();
          else if (lf === 2 && lw === 2) v = r.string();
          else r.skip(lw);
        });
        labels.push(`${n}=${v}`);
      } else if (sf === 2) {
        let t = 0;
        let v = 0;
        r.fields(r.submessageEnd(), (pf, pw) => {
          if (pf === 1 && pw === 1) v = r.double();
          else if (pf === 2 && pw === 0) t = Number(BigInt.asIntN(64, r.varintBig()));
          else r.skip(pw);
        });
        samples.push([t, v]);
      } else r.skip(sw);
    });
    out.set(labels.join(','), samples);
  });
  return out;
}

test('a WriteRequest: labels sorted, samples in time order, delta sums skipped and counted, staleness marker for no recorded value', () => {
  const b = new WriteRequestBuilder({ resourceLabels: [], targetInfo: true });
  const kv = (key: string, v: string) => ({ key, value: { stringValue: v } });
  b.addMetrics({
    resourceMetrics: [
      {
        resource: { attributes: [kv('device.id', 'd1'), kv('service.name', 'svc'), kv('site', 'p7')] },
        scopeMetrics: [
          {
            metrics: [
              {
                name: 'temp',
                gauge: {
                  dataPoints: [
                    { attributes: [], timeUnixNano: '3000000000', asDouble: 3 },
                    { attributes: [], timeUnixNano: '1000000000', asDouble: 1 },
                    { attributes: [], timeUnixNano: '2000000000', asDouble: 2, flags: 1 },
                  ],
                },
              },
              {
                name: 'd',
                sum: {
                  isMonotonic: true,
                  aggregationTemporality: 1,
                  dataPoints: [{ attributes: [], asInt: '5', timeUnixNano: '1' }],
                },
              },
            ],
          },
        ],
      },
    ],
  });
  assert.deepEqual(Object.fromEntries(b.skipped), { delta_sum: 1 });
  const series = readWriteRequest(b.encode());
  const temp = series.get('__name__=temp,device_id=d1,job=svc')!;
  assert.deepEqual(
    temp.map(([t]) => t),
    [1000, 2000, 3000],
  );
  assert.equal(temp[0][1], 1);
  assert.ok(Number.isNaN(temp[1][1]), 'staleness marker');
  assert.deepEqual(series.get('__name__=target_info,device_id=d1,job=svc,site=p7'), [[3000, 1]]);
});
