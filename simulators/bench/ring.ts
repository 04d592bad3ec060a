import type { BenchRow } from './report.js';
import { HashRing, type RingMember } from '../../protocol/ring/ring.js';

/**
 * Ring figures for `otlp-edge-sim bench protocol`: lookups/s (budget ≥ 1,000,000 on the 2-core reference machine),
 * and the balance and movement the placement gives. Rows have the shape of report.ts's BenchRow, so the protocol
 * bench can add budgets and print them with the rest.
 */
export type RingBenchRow = BenchRow;

const MEMBERS = 10;
const LOOKUPS = 1_000_000;
const PASSES = 3;

const memberSet = (name: (i: number) => string): RingMember[] =>
  Array.from({ length: MEMBERS }, (_, i) => ({ id: name(i), address: `10.0.0.${i + 1}:4317` }));

/** Device ids as fleets name them; generated up front so the timed loop only looks up. */
function deviceIds(n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const serial = String(i).padStart(7, '0');
    if (i % 3 === 0) return `dev-${serial}`;
    if (i % 3 === 1) return `sensor:plant${i % 9}:${serial}`;
    return `gw-${String(i % 40).padStart(2, '0')}.meter-${serial}`;
  });
}

/** Busiest member's device count over the mean. */
function balance(ring: HashRing, ids: readonly string[]): number {
  const counts = new Float64Array(ring.size);
  for (const id of ids) counts[ring.ownerIndex(id)]++;
  return Math.max(...counts) / (ids.length / ring.size);
}

/** Fraction of `ids` whose owner differs between the two rings. */
function moved(a: HashRing, b: HashRing, ids: readonly string[]): number {
  let n = 0;
  for (const id of ids) if (a.owner(id).id !== b.owner(id).id) n++;
  return n / ids.length;
}

export async function benchRing(): Promise<RingBenchRow[]> {
  const ring = new HashRing(memberSet((i) => `agg-${i}`));
  const ids = deviceIds(LOOKUPS);

  // Warm up with one untimed pass: it gets the lookup optimized and flattens the ids (template strings start as
  // rope strings; ids decoded from the wire are flat). Then time a few passes and keep the fastest, the one least
  // disturbed by whatever else shares the machine. The sum keeps the loops from being optimized away.
  let sink = 0;
  for (let i = 0; i < LOOKUPS; i++) sink += ring.ownerIndex(ids[i]);
  let seconds = Infinity;
  for (let pass = 0; pass < PASSES; pass++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < LOOKUPS; i++) sink += ring.ownerIndex(ids[i]);
    seconds = Math.min(seconds, Number(process.hrtime.bigint() - start) / 1e9);
  }
  if (sink < 0) throw new Error('unreachable');

  // Balance across member-name styles: the worst is the figure that matters, as operators pick names freely.
  const sample = ids.slice(0, 200_000);
  const styles: [string, (i: number) => string][] = [
    ['agg-N', (i) => `agg-${i}`],
    ['ip:port', (i) => `10.1.2.${i + 1}:4317`],
    ['k8s DNS', (i) => `otlp-edge-aggregator-${i}.otlp-edge.svc.cluster.local`],
    ['host names', (i) => `edge-${(i * 7919).toString(36)}-${'abcdefghij'[i]}`],
  ];
  const balances = styles.map(([label, name]) => ({ label, value: balance(new HashRing(memberSet(name)), sample) }));
  const worst = balances.reduce((a, b) => (b.value > a.value ? b : a));

  const grown = ring.withMember({ id: `agg-${MEMBERS}`, address: `10.0.0.${MEMBERS + 1}:4317` });
  const shrunk = ring.withoutMember('agg-3');

  return [
    {
      name: `ring lookups, ${MEMBERS} members x ${ring.vnodes} vnodes`,
      value: LOOKUPS / seconds,
      unit: 'lookups/s',
      budget: { op: '>=', bound: 1_000_000 },
      note: `fastest of ${PASSES} passes over ${LOOKUPS.toLocaleString('en-US')} device ids`,
    },
    {
      name: `ring balance, busiest member / mean, ${sample.length.toLocaleString('en-US')} devices`,
      value: worst.value,
      unit: 'x',
      budget: { op: '<=', bound: 1.15 },
      note: `worst of ${balances.map((b) => `${b.label} ${b.value.toFixed(3)}`).join(', ')}`,
    },
    {
      name: `ring movement when member ${MEMBERS + 1} joins`,
      value: moved(ring, grown, sample),
      unit: 'of devices',
      note: `ideal 1/${MEMBERS + 1} = ${(1 / (MEMBERS + 1)).toFixed(3)}`,
    },
    {
      name: `ring movement when 1 of ${MEMBERS} leaves`,
      value: moved(ring, shrunk, sample),
      unit: 'of devices',
      note: `its share; ideal 1/${MEMBERS} = ${(1 / MEMBERS).toFixed(3)}`,
    },
  ];
}
