import { Decoder, encode, type Options as CborOptions } from 'cbor-x';
import { decodeTelemetry } from '../../protocol/payload/decode.js';
import type { DecodeOptions } from '../../protocol/payload/types.js';
import type { BenchRow } from './report.js';

/**
 * Device payload decode, the agent's first hot-path step: readings/s of decodeTelemetry for typical messages — one
 * flat reading of 5 metrics with ts and seq, a list of 50, and one explicit-form reading — in JSON and in CBOR. Each
 * figure sits beside the bare parser on the same bytes (JSON.parse of the text; cbor-x decode), so the ratio is the
 * share of the parser's speed left after validation and normalization.
 */

const WARMUP_NS = 200_000_000n;
const MIN_NS = 500_000_000n;
/** Calls between clock reads: a clock read costs about as much as a tenth of a small decode. */
const CALLS_PER_CHECK = 64;

/** Calls per second of `fn` over at least MIN_NS, after WARMUP_NS of warm-up. */
function callsPerSecond(fn: () => unknown, minNs: bigint): number {
  let sink = 0;
  const warm = process.hrtime.bigint() + WARMUP_NS;
  while (process.hrtime.bigint() < warm) for (let i = 0; i < CALLS_PER_CHECK; i++) sink ^= fn() === undefined ? 1 : 0;
  let calls = 0;
  const start = process.hrtime.bigint();
  let now = start;
  while (now - start < minNs) {
    for (let i = 0; i < CALLS_PER_CHECK; i++) sink ^= fn() === undefined ? 1 : 0;
    calls += CALLS_PER_CHECK;
    now = process.hrtime.bigint();
  }
  if (sink === 2) console.log(sink); // keeps the results alive
  return calls / (Number(now - start) / 1e9);
}

const flat = (i: number) => ({
  ts: 1732280000000 + i * 1000,
  seq: i,
  temperature: 21.53,
  humidity: 44,
  battery: 3.291,
  pulses: 81234 + i,
  door_open: false,
});
const explicit = (i: number) => ({
  ts: '2026-11-22T12:00:00.123Z',
  seq: i,
  metrics: { temperature: 21.53, env: { hum: 44, pressure: 1013.2 } },
  attributes: { fw: '1.4.2' },
});

/** `window`: share of the default timed window (MIN_NS) each figure runs, e.g. 0.3 for a quick run. */
export function benchPayloadDecode(window = 1): BenchRow[] {
  const minNs = BigInt(Math.round(Number(MIN_NS) * window));
  const cases: [string, unknown, number][] = [
    ['1 flat reading', flat(1), 1],
    ['50 flat readings', Array.from({ length: 50 }, (_, i) => flat(i)), 50],
    ['1 explicit reading', explicit(1), 1],
  ];
  const opts: DecodeOptions = { arrivalMs: 1732280000000 };
  const bareCbor = new Decoder({ mapsAsObjects: true, useRecords: false } as CborOptions);
  const rows: BenchRow[] = [];
  for (const [label, value, n] of cases) {
    const json = Buffer.from(JSON.stringify(value));
    const cbor = Buffer.from(encode(value));
    rows.push({
      name: `payload decode, JSON, ${label}`,
      value: callsPerSecond(() => decodeTelemetry(json, opts), minNs) * n,
      unit: 'readings/s',
      baseline: { name: 'JSON.parse', value: callsPerSecond(() => JSON.parse(json.toString()), minNs) * n },
      note: `${json.length} B`,
    });
    rows.push({
      name: `payload decode, CBOR, ${label}`,
      value: callsPerSecond(() => decodeTelemetry(cbor, opts), minNs) * n,
      unit: 'readings/s',
      baseline: { name: 'cbor-x decode', value: callsPerSecond(() => bareCbor.decode(cbor), minNs) * n },
      note: `${cbor.length} B`,
    });
  }
  return rows;
}
