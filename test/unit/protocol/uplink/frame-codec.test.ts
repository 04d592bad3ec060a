import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtoError } from '../../../../protocol/errors.js';
import { MetricsEncoder } from '../../../../protocol/otlp/metrics-encoder.js';
import { LogsEncoder } from '../../../../protocol/otlp/logs-encoder.js';
import { Signal } from '../../../../protocol/otlp/signal.js';
import { MAX_SEGMENTS, type Segment } from '../../../../protocol/uplink/frame/frame-codec.js';
import { UplinkStreamDecoder, UplinkStreamEncoder } from '../../../../protocol/uplink/frame/stream.js';
import { loadProtos, toObjectOptions } from '../../../helpers/protos.js';
import { visitMetricsRequest, type MetricsVisitor } from '../../../../protocol/otlp/visit.js';
import { mulberry32 } from '../../../helpers/random.js';

/**
 * The uplink stream's coding against the OTLP it replaces: requests built by an independent encoder (protobufjs from
 * the .proto files) with random series — ints (past 2^53 too), NaN-free and odd doubles, gaps, timestamps out of
 * order, attributes and resources changing mid-stream, sums with start times, histograms the columns do not carry —
 * go through one encoder and one decoder frame after frame, and every segment comes back as the same OTLP.
 */

const root = loadProtos(
  'opentelemetry/proto/collector/metrics/v1/metrics_service.proto',
  'opentelemetry/proto/collector/logs/v1/logs_service.proto',
);
const Req = root.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest');
type Obj = Record<string, unknown>;
const view = (bytes: Uint8Array) => Req.toObject(Req.decode(bytes), toObjectOptions);

const MAX = 64 << 20;

class RandomTelemetry {
  private readonly r: () => number;
  /** Per series: last time (ms), last value. */
  private readonly last = new Map<string, { t: number; v: number }>();
  constructor(seed: number) {
    this.r = mulberry32(seed);
  }
  int(n: number) {
    return Math.floor(this.r() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  /** A time in ns as a decimal string: mostly a second after the last, sometimes a gap, out of order, or sub-ms. */
  time(key: string): string {
    const prev = this.last.get(key)?.t ?? 1_780_000_000_000 + this.int(1e6);
    const roll = this.r();
    const t =
      roll < 0.7
        ? prev + 1000 + this.int(5) - 2
        : roll < 0.8
          ? prev + this.int(3_600_000) // a gap
          : roll < 0.9
            ? prev - this.int(5000) // out of order
            : prev + 7 * 86_400_000; // a week: past the delta coding's range
    this.last.set(key, { t, v: this.last.get(key)?.v ?? 0 });
    const subNs = this.r() < 0.2 ? this.int(1_000_000) : 0;
    return (BigInt(t) * 1_000_000n + BigInt(subNs)).toString();
  }
  value(key: string): Obj {
    const s = this.last.get(key) ?? { t: 0, v: 0 };
    const roll = this.r();
    if (roll < 0.3) {
      s.v += this.int(7) - 3;
      return { asInt: String(s.v) };
    }
    if (roll < 0.35) return { asInt: this.pick(['9223372036854775807', '-9223372036854775808', '9007199254740993']) };
    if (roll < 0.75) {
      s.v = Math.round((s.v + (this.r() - 0.5) * 3) * 100) / 100;
      return { asDouble: s.v };
    }
    if (roll < 0.9) return { asDouble: this.r() * 1e6 - 5e5 }; // no short decimal
    return { asDouble: this.pick([-0, 0, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, -1e21, 123456789.123456]) };
  }
  attrs(): Obj[] | undefined {
    if (this.r() < 0.4) return undefined;
    const out: Obj[] = [{ key: 'fw', value: { stringValue: this.pick(['1.4.2', '1.4.3']) } }];
    if (this.r() < 0.3) out.push({ key: 'room', value: { intValue: String(this.int(4)) } });
    if (this.r() < 0.1) out.push({ key: 'ok', value: { boolValue: true } });
    return out;
  }
  request(): Obj {
    const resources = [];
    for (let d = 0, n = 1 + this.int(4); d < n; d++) {
      const device = `dev-${this.int(12)}`;
      const metrics = [];
      for (let m = 0, nm = 1 + this.int(4); m < nm; m++) {
        const name = this.pick(['temperature', 'humidity', 'pulses', 'battery', 'energy']);
        const points = [];
        for (let p = 0, np = 1 + this.int(3); p < np; p++) {
          const attributes = this.attrs();
          const key = `${device}/${name}/${JSON.stringify(attributes)}`;
          points.push({ attributes, timeUnixNano: this.time(key), ...this.value(key) });
        }
        const roll = this.r();
        if (roll < 0.6) metrics.push({ name, gauge: { dataPoints: points } });
        else if (roll < 0.9)
          metrics.push({
            name,
            unit: 'kWh',
            description: 'energy counter',
            sum: {
              dataPoints: points.map((p) => ({ ...p, startTimeUnixNano: '1779999000000000000' })),
              aggregationTemporality: 2,
              isMonotonic: true,
            },
          });
        else
          metrics.push({
            name: 'latency',
            histogram: {
              dataPoints: [
                { timeUnixNano: '1780000000000000000', count: '3', bucketCounts: ['1', '2'], explicitBounds: [1] },
              ],
              aggregationTemporality: 2,
            },
          });
      }
      resources.push({
        resource: {
          attributes: [
            { key: 'device.id', value: { stringValue: device } },
            { key: 'service.name', value: { stringValue: 'iot-device' } },
            ...(this.r() < 0.1 ? [{ key: 'site', value: { stringValue: `plant-${this.int(3)}` } }] : []),
          ],
        },
        ...(this.r() < 0.1 ? { schemaUrl: 'https://opentelemetry.io/schemas/1.21.0' } : {}),
        scopeMetrics: [{ scope: { name: 'otlp-edge-agent', version: '0.1.0' }, metrics }],
      });
    }
    return { resourceMetrics: resources };
  }
}

/** What a MetricsVisitor is told, as a list of calls. */
function recorder(): MetricsVisitor & { calls: unknown[] } {
  const calls: unknown[] = [];
  return {
    calls,
    resource: (id) => calls.push(['resource', id]),
    point: (metric, ts, value) => calls.push([metric, ts, value]),
  };
}

test('random OTLP metrics through one stream come back exactly, frame after frame', () => {
  for (const seed of [1, 2, 3, 42, 1234]) {
    const gen = new RandomTelemetry(seed);
    const enc = new UplinkStreamEncoder(3);
    const dec = new UplinkStreamDecoder();
    // A second decoder of the same frames tells a visitor what it reads instead of rebuilding the OTLP: it must be
    // told exactly what visitMetricsRequest reads from the rebuilt requests.
    const visiting = new UplinkStreamDecoder();
    // A third both visits and rebuilds, in one pass (an exporting aggregator): both must be as above.
    const both = new UplinkStreamDecoder();
    let columnSegments = 0;
    let seq = 0;
    for (let frame = 0; frame < 60; frame++) {
      const segments: Segment[] = [];
      for (let s = 0, n = 1 + gen.int(5); s < n; s++) {
        const obj = gen.request();
        seq += 1 + (gen.int(10) === 0 ? gen.int(1000) : 0); // seqs with holes (other routes' batches)
        segments.push({ seq, signal: Signal.METRICS, points: 7, otlp: Req.encode(Req.fromObject(obj)).finish() });
      }
      const bytes = enc.encode(segments);
      const back = dec.decode(bytes, MAX);
      const visited = visiting.decode(bytes, MAX, () => recorder());
      const rebuilt = both.decode(bytes, MAX, () => recorder(), true);
      assert.equal(back.length, segments.length);
      for (let i = 0; i < back.length; i++) {
        const expected = recorder();
        visitMetricsRequest(back[i].otlp, expected);
        const v = visited[i].visitor as ReturnType<typeof recorder> | undefined;
        if (v === undefined) assert.deepEqual(visited[i].otlp, back[i].otlp, 'carried as it is');
        else {
          assert.deepStrictEqual(v.calls, expected.calls, `seed ${seed} frame ${frame} segment ${i} visited`);
          columnSegments++;
        }
        const r = rebuilt[i].visitor as ReturnType<typeof recorder> | undefined;
        assert.deepStrictEqual(view(rebuilt[i].otlp), view(back[i].otlp), 'rebuilt while visited');
        if (r !== undefined) assert.deepStrictEqual(r.calls, expected.calls, 'visited while rebuilt');
      }
      for (let i = 0; i < segments.length; i++) {
        assert.equal(back[i].seq, segments[i].seq, `seed ${seed} frame ${frame}`);
        assert.equal(back[i].signal, Signal.METRICS);
        assert.equal(back[i].points, 7);
        assert.deepStrictEqual(view(back[i].otlp), view(segments[i].otlp), `seed ${seed} frame ${frame} segment ${i}`);
      }
    }
    assert.ok(columnSegments > 20, `${columnSegments} segments went as columns`);
  }
});

test("the agent's own requests come back byte for byte, with logs beside them, at a fraction of their size", () => {
  const metrics = new MetricsEncoder({ gatewayId: 'gw-1', attributes: { site: 'plant-7' }, counters: ['pulses'] });
  const logs = new LogsEncoder({ gatewayId: 'gw-1' });
  const r = mulberry32(7);
  const enc = new UplinkStreamEncoder(3);
  const dec = new UplinkStreamDecoder();
  let seq = 0;
  let otlpBytes = 0;
  let wire = 0;
  const t0 = 1_780_000_000_000;
  for (let second = 0; second < 30; second++) {
    const segments: Segment[] = [];
    for (let part = 0; part < 10; part++) {
      const devices = Array.from({ length: 20 }, (_, i) => {
        const d = part * 20 + i;
        return {
          deviceId: `sensor-${d}`,
          readings: [
            {
              ts: t0 + second * 1000 + d * 3 + Math.floor(r() * 3),
              seq: second + 1,
              names: ['temperature', 'humidity', 'pulses'],
              values: [Math.round((20 + d / 10 + r()) * 100) / 100, 40 + Math.floor(r() * 3), second * 3 + d],
              attributes: ['fw', '1.4.2'],
            },
          ],
        };
      });
      segments.push({ seq: ++seq, signal: Signal.METRICS, points: 80, otlp: metrics.encode(devices) });
    }
    segments.push({
      seq: ++seq,
      signal: Signal.LOGS,
      points: 1,
      otlp: logs.encode([
        {
          deviceId: 'sensor-3',
          events: [
            { ts: t0 + second * 1000, severityNumber: 13, severityText: 'warn', body: 'door open', attributes: null },
          ],
        },
      ]),
    });
    const bytes = enc.encode(segments);
    wire += bytes.length;
    const back = dec.decode(bytes, MAX);
    for (let i = 0; i < segments.length; i++) {
      assert.deepEqual(Buffer.from(back[i].otlp), Buffer.from(segments[i].otlp), `second ${second} segment ${i}`);
      otlpBytes += segments[i].otlp.length;
    }
  }
  const points = 30 * 10 * 80;
  assert.ok(
    wire / points < 2,
    `${(wire / points).toFixed(2)} bytes per point on the stream (OTLP: ${(otlpBytes / points).toFixed(1)})`,
  );
});

test('a stream whose dictionaries fill up starts its state over, and both ends stay in step', () => {
  const metrics = new MetricsEncoder({ gatewayId: 'gw-1' });
  const enc = new UplinkStreamEncoder(1);
  const dec = new UplinkStreamDecoder();
  let seq = 0;
  // 4,095 scopes fit; every request here brings new scope bytes (the scope carries the version).
  for (let frame = 0; frame < 90; frame++) {
    const segments: Segment[] = [];
    for (let s = 0; s < 50; s++) {
      const req = Req.toObject(
        Req.decode(
          metrics.encode([
            { deviceId: 'd-1', readings: [{ ts: 1e12 + frame, seq: -1, names: ['x'], values: [1], attributes: null }] },
          ]),
        ),
      ) as Obj;
      const rm = (req.resourceMetrics as Obj[])[0];
      ((rm.scopeMetrics as Obj[])[0].scope as Obj).version = `v${frame}.${s}`;
      segments.push({ seq: ++seq, signal: Signal.METRICS, points: 1, otlp: Req.encode(Req.fromObject(req)).finish() });
    }
    const back = dec.decode(enc.encode(segments), MAX);
    for (let i = 0; i < segments.length; i++) assert.deepStrictEqual(view(back[i].otlp), view(segments[i].otlp));
  }
});

test('bytes that are not the next frame of the stream end in a ProtoError, never in a crash or a hang', () => {
  const r = mulberry32(99);
  const good = new UplinkStreamEncoder(3);
  const metrics = new MetricsEncoder({ gatewayId: 'gw' });
  const seg = (seq: number): Segment => ({
    seq,
    signal: Signal.METRICS,
    points: 2,
    otlp: metrics.encode([
      { deviceId: 'd', readings: [{ ts: 1e12 + seq, seq, names: ['t'], values: [seq / 10], attributes: null }] },
    ]),
  });
  const frames = [1, 2, 3].map((i) => good.encode([seg(i)]));
  // Out of order: frame 2 before frame 1.
  assert.throws(() => new UplinkStreamDecoder().decode(frames[1], MAX), ProtoError);
  // Truncated and flipped bytes, and plain garbage.
  for (let i = 0; i < 300; i++) {
    const d = new UplinkStreamDecoder();
    const f = Buffer.from(frames[0]);
    if (i % 3 === 0) f[Math.floor(r() * f.length)] ^= 1 + Math.floor(r() * 255);
    const bytes =
      i % 3 === 1
        ? f.subarray(0, Math.floor(r() * f.length))
        : i % 3 === 2
          ? Buffer.from(Array.from({ length: 64 }, () => Math.floor(r() * 256)))
          : f;
    try {
      d.decode(bytes, MAX);
    } catch (e) {
      assert.ok(e instanceof ProtoError, `attempt ${i}: ${(e as Error).stack}`);
    }
  }
  // A frame that would inflate past the bound is refused.
  assert.throws(() => new UplinkStreamDecoder().decode(frames[0], 16), ProtoError);
});

test('a frame may not hold more segments, or visit more points, than its bounds allow', () => {
  const many = Array.from({ length: MAX_SEGMENTS + 1 }, (_, i) => ({
    seq: i + 1,
    signal: Signal.LOGS,
    points: 0,
    otlp: new Uint8Array(0),
  }));
  assert.throws(() => new UplinkStreamDecoder().decode(new UplinkStreamEncoder(1).encode(many), MAX), ProtoError);

  const metrics = new MetricsEncoder({ gatewayId: 'gw' });
  const readings = Array.from({ length: 100 }, (_, i) => ({
    ts: 1e12 + i,
    seq: -1,
    names: ['t'],
    values: [i],
    attributes: null,
  }));
  const frame = new UplinkStreamEncoder(1).encode([
    { seq: 1, signal: Signal.METRICS, points: 100, otlp: metrics.encode([{ deviceId: 'd', readings }]) },
  ]);
  // 100 points visited count as at least 2,000 bytes of OTLP: over a 1,000-byte bound.
  assert.throws(() => new UplinkStreamDecoder().decode(frame, 1000, () => recorder()), ProtoError);
  assert.equal(new UplinkStreamDecoder().decode(frame, 4000, () => recorder()).length, 1);
});
