import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogsEncoder } from '../../../../protocol/otlp/logs-encoder.js';
import { decodeOfficial } from '../../../helpers/otlp-sink.js';
import { LogSampler, type SamplingConfig } from '../../../../aggregator/tenants/sampling.js';
import { filterLogRecords } from '../../../../protocol/otlp/logs-filter.js';
import { ProtoError } from '../../../../protocol/errors.js';

const SEV = { info: 9, warn: 13, error: 17 } as const;

/** A logs request of `n` events per device, severities cycling through `severities`. */
function logs(devices: string[], n: number, severities: (keyof typeof SEV)[] = ['info']): Uint8Array {
  return new LogsEncoder({ gatewayId: 'gw' }).encode(
    devices.map((deviceId) => ({
      deviceId,
      events: Array.from({ length: n }, (_, i) => {
        const s = severities[i % severities.length];
        return {
          ts: 1732280000000 + i,
          severityNumber: SEV[s],
          severityText: s,
          body: `event ${i}`,
          attributes: ['k', i],
        };
      }),
    })),
  );
}

const records = (req: Uint8Array) =>
  decodeOfficial('logs', req).resourceLogs.flatMap((rl: any) => rl.scopeLogs.flatMap((sl: any) => sl.logRecords));
const attr = (rec: any, key: string) => rec.attributes.find((kv: any) => kv.key === key)?.value;

test('filterLogRecords keeps, marks and leaves records; resources stay; other bytes untouched', () => {
  const req = logs(['d1', 'd2'], 4);
  let i = 0;
  const r = filterLogRecords(req, () => [1, 0, 4, 0][i++ % 4], 'sampling.adjusted_count');
  assert.deepEqual([r.kept, r.left], [4, 4]);
  const out = decodeOfficial('logs', r.request);
  assert.equal(out.resourceLogs.length, 2, 'both devices still heard from');
  const kept = records(r.request);
  assert.deepEqual(
    kept.map((x: any) => x.body.stringValue),
    ['event 0', 'event 2', 'event 0', 'event 2'],
  );
  assert.equal(attr(kept[0], 'sampling.adjusted_count'), undefined);
  assert.equal(attr(kept[1], 'sampling.adjusted_count').doubleValue, 4);
  assert.equal(Number(attr(kept[1], 'k').intValue), 2, 'own attributes kept');
  assert.equal(filterLogRecords(req, () => 1, 'x').request, req, 'all kept unmarked: the same bytes');
  assert.throws(() => filterLogRecords(req.subarray(0, req.length - 3), () => 1, 'x'), ProtoError);
});

const cfg = (c: Partial<SamplingConfig>): SamplingConfig => ({
  logs_per_second: 100,
  keep_severity_at_least: 'error',
  interval: 10_000,
  ...c,
});

test('under its target a tenant keeps everything; over it the probability follows target / rate, errors always kept', () => {
  let now = 0;
  const s = new LogSampler(cfg({ logs_per_second: 100 }), { members: () => 1, share: () => 1 }, () => now);
  // 10 s at 50 events/s: all kept, probability stays 1.
  for (let i = 0; i < 10; i++, now += 1000) assert.equal(s.sample('acme', logs(['d'], 50)).left, 0);
  // 10 s at 400 events/s (and 40 errors/s): the probability goes to 1/4 once the burst or the interval says so.
  let kept = 0;
  let forced = 0;
  let left = 0;
  for (let i = 0; i < 20; i++, now += 1000) {
    const r = s.sample(
      'acme',
      logs(['d'], 440, ['info', 'info', 'info', 'info', 'info', 'info', 'info', 'info', 'info', 'info', 'error']),
    );
    if (i >= 10) {
      kept += r.kept;
      forced += r.forced;
      left += r.left;
    }
  }
  assert.equal(forced, 400, 'every error kept');
  assert.ok(Math.abs(s.probabilities().get('acme')! - 0.25) < 0.01, String(s.probabilities().get('acme')));
  assert.ok(Math.abs(kept - 1000) <= 2, `kept ${kept} of 4,000 (the target: 100/s)`);
  assert.equal(kept + left, 4000);
  // Kept records stand for 4 each.
  const r = s.sample('acme', logs(['d'], 8));
  const marked = records(r.request);
  assert.equal(marked.length, 2);
  assert.ok(Math.abs(attr(marked[0], 'sampling.adjusted_count').doubleValue - 4) < 0.1);
  // Another tenant is sampled on its own.
  assert.equal(s.sample('globex', logs(['g'], 90)).left, 0);
});

test('a cluster keeps its part of the target on each node', () => {
  let now = 0;
  const s = new LogSampler(
    cfg({ logs_per_second: 300, interval: 1000 }),
    { members: () => 3, share: () => 1 / 3 },
    () => now,
  );
  s.sample('t', logs(['d'], 400));
  now += 1000;
  s.sample('t', logs(['d'], 1));
  assert.ok(Math.abs(s.probabilities().get('t')! - 100 / 401) < 0.01);
});

test('one burst request after a quiet spell is cut within itself, not let through whole', () => {
  const s = new LogSampler(cfg({ logs_per_second: 100 }), { members: () => 1, share: () => 1 }, () => 0);
  const r = s.sample('acme', logs(['d'], 2000));
  // 200 taken before the rate reads as twice the target, then ever fewer: about 200 + 100 × ln(10).
  assert.ok(r.kept > 300 && r.kept < 500, `kept ${r.kept} of 2,000`);
  assert.equal(r.kept + r.left, 2000);
});
