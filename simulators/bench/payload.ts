import { encode } from 'cbor-x';
import { decodeTelemetry } from '../../protocol/payload/decode.js';
import { opsPerSecond, type BenchRow } from './report.js';

/** Device payload decode (the agent's first hot-path step): readings/s for typical messages, JSON and CBOR. */
export function benchPayloadDecode(): BenchRow[] {
  const reading = (i: number) => ({ ts: 1732280000000 + i * 1000, seq: i, temperature: 21.53, humidity: 44, battery: 3.291, pulses: 81234 + i, door_open: false });
  const cases: [string, unknown, number][] = [
    ['1 flat reading', reading(1), 1],
    ['50 flat readings', Array.from({ length: 50 }, (_, i) => reading(i)), 50],
  ];
  const rows: BenchRow[] = [];
  const opts = { arrivalMs: 1732280000000 };
  for (const [label, value, n] of cases) {
    const json = Buffer.from(JSON.stringify(value));
    const cbor = Buffer.from(encode(value));
    const jsonRate = opsPerSecond(() => decodeTelemetry(json, opts), n);
    rows.push({ name: `payload decode, JSON, ${label}`, value: jsonRate, unit: 'readings/s', note: `${json.length} B` });
    rows.push({ name: `payload decode, CBOR, ${label}`, value: opsPerSecond(() => decodeTelemetry(cbor, opts), n), unit: 'readings/s', baseline: { name: 'JSON', value: jsonRate }, note: `${cbor.length} B` });
  }
  return rows;
}
