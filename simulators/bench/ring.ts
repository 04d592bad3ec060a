import { HashRing } from '../../protocol/ring/ring.js';
import { opsPerSecond, type BenchRow } from './report.js';

/** Ring lookups/s (budget ≥ 1,000,000) and the balance and movement this ring gives, 10 members × 128 vnodes. */
export async function benchRing(): Promise<BenchRow[]> {
  const members = Array.from({ length: 10 }, (_, i) => ({ id: `agg-${i}`, address: `10.0.0.${i + 1}:4317` }));
  const ring = new HashRing(members);
  const ids = Array.from({ length: 100_000 }, (_, i) => `dev-${String(i).padStart(6, '0')}`);
  let i = 0;
  const rate = opsPerSecond(() => {
    for (let k = 0; k < 1000; k++) ring.ownerIndex(ids[(i++) % ids.length]);
  }, 1000);
  const counts = new Array<number>(members.length).fill(0);
  const before = ids.map((d) => ring.ownerIndex(d));
  for (const o of before) counts[o]++;
  const grown = ring.withMember({ id: 'agg-10', address: '10.0.0.11:4317' });
  let moved = 0;
  for (let k = 0; k < ids.length; k++) if (grown.owner(ids[k]).id !== members[before[k]].id) moved++;
  return [
    { name: 'ring lookups, 10 members x 128 vnodes', value: rate, unit: 'lookups/s' },
    { name: 'ring balance, busiest member / mean', value: Math.max(...counts) / (ids.length / members.length), unit: 'x', budget: '<= 1.15' },
    { name: 'ring movement when an 11th member joins', value: moved / ids.length, unit: 'of devices', note: `ideal 1/11 = ${(1 / 11).toFixed(3)}` },
  ];
}
