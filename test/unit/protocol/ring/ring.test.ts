import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DEFAULT_VNODES, HashRing, type RingMember } from '../../../../protocol/ring/ring.js';
import { murmur3 } from '../../../../protocol/ring/hash.js';
import { RingError } from '../../../../protocol/errors.js';

const members = (ids: string[]): RingMember[] => ids.map((id, i) => ({ id, address: `10.0.0.${i + 1}:4317` }));
const ten = members(Array.from({ length: 10 }, (_, i) => `agg-${i}`));
const devices = Array.from({ length: 100_000 }, (_, i) => (i % 2 ? `dev-${String(i).padStart(6, '0')}` : `sensor:plant7:${i}`));

function owners(ring: HashRing): string[] {
  return devices.map((d) => ring.owner(d).id);
}

test('murmur3 matches the reference vectors (the hash is a cross-process contract)', () => {
  assert.equal(murmur3(''), 0);
  assert.equal(murmur3('', 1), 0x514e28b7);
  assert.equal(murmur3('hello'), 0x248bfa47);
  assert.equal(murmur3('abc'), 0xb3dd93fa);
  assert.equal(murmur3('aaaa', 0x9747b28c), 0x5a97808a);
  assert.equal(murmur3('The quick brown fox jumps over the lazy dog'), 0x2e4ff723);
  assert.equal(murmur3('gerät-ü'), 0xa940c9fc, 'non-ASCII ids hash their UTF-8 bytes');
  // Pinned owners: a change of hash, vnode naming or probe rule would move devices between clusters' processes.
  const ring = new HashRing(ten);
  assert.deepEqual(['dev-000001', 'dev-000002', 'sensor:plant7:42', 'pump-7'].map((d) => ring.owner(d).id), PINNED);
});
const PINNED = ['agg-1', 'agg-8', 'agg-1', 'agg-5'];

test('10 members, 100,000 devices: the busiest member holds at most 1.15x the mean', () => {
  for (const set of [ten, members(Array.from({ length: 10 }, (_, i) => `10.1.2.${i}:4317`)), members(Array.from({ length: 10 }, (_, i) => `otlp-edge-aggregator-${i}.otlp-edge.svc`))]) {
    const ring = new HashRing(set);
    assert.equal(ring.vnodes, DEFAULT_VNODES);
    const counts = new Map<string, number>();
    for (const o of owners(ring)) counts.set(o, (counts.get(o) ?? 0) + 1);
    const max = Math.max(...counts.values());
    assert.ok(max <= 1.15 * (devices.length / set.length), `busiest holds ${max} (${(max / 10_000).toFixed(3)}x the mean) with ${set[0].id}…`);
    const share = ring.share();
    assert.ok(Math.abs([...share.values()].reduce((a, b) => a + b, 0) - 1) < 1e-9);
  }
});

test('adding or removing one of N members moves about 1/N of the devices, and none between members that stayed', () => {
  const before = new HashRing(ten);
  const a = owners(before);
  const grown = before.withMember({ id: 'agg-10', address: '10.0.0.11:4317' });
  const b = owners(grown);
  let moved = 0;
  for (let i = 0; i < devices.length; i++) {
    if (a[i] !== b[i]) {
      moved++;
      assert.equal(b[i], 'agg-10', `${devices[i]} moved from ${a[i]} to ${b[i]}, not to the new member`);
    }
  }
  const n = 11; // the new member takes its fair share of the grown ring: 1/11
  assert.ok(moved >= (0.8 / n) * devices.length && moved <= (1.2 / n) * devices.length, `moved ${moved} of ${devices.length} (1/${n} = ${Math.round(devices.length / n)})`);

  const shrunk = before.withoutMember('agg-3');
  const c = owners(shrunk);
  let lost = 0;
  for (let i = 0; i < devices.length; i++) {
    if (a[i] !== c[i]) {
      lost++;
      assert.equal(a[i], 'agg-3', `${devices[i]} moved from ${a[i]}, which stayed`);
    }
  }
  // Removing one of 10 frees that member's 1/10.
  assert.ok(lost >= (0.8 / 10) * devices.length && lost <= (1.2 / 10) * devices.length, `moved ${lost}`);
});

test('the owner of a device is the same in a separate process', () => {
  const sample = devices.slice(0, 2000);
  const here = sample.map((d) => new HashRing(ten).owner(d).id);
  const mod = fileURLToPath(new URL('../../../../protocol/ring/ring.js', import.meta.url));
  const script = `import { HashRing } from ${JSON.stringify(mod)};
    const ids = JSON.parse(process.argv[1]); const ms = JSON.parse(process.argv[2]);
    const r = new HashRing(ms.reverse());
    process.stdout.write(JSON.stringify(ids.map((d) => r.owner(d).id)));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(sample), JSON.stringify(ten)], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out), here);
});

test('the version changes with membership and agrees for the same members in any order', () => {
  const a = new HashRing(ten);
  const b = new HashRing([...ten].reverse());
  assert.equal(a.version, b.version);
  assert.notEqual(a.withoutMember('agg-0').version, a.version);
  assert.notEqual(new HashRing(ten, 64).version, a.version);
  assert.notEqual(new HashRing(ten.map((m) => (m.id === 'agg-1' ? { ...m, address: '10.9.9.9:4317' } : m))).version, a.version);
  assert.notEqual(a.version, 0);
});

test('an empty ring, duplicate or empty ids and bad vnodes are coded errors', () => {
  assert.throws(() => new HashRing([]).owner('x'), (e: unknown) => e instanceof RingError && e.code === 'OTLPEDGE_RING_EMPTY' && /configure cluster\.members/.test(e.message));
  assert.throws(() => new HashRing(members(['a', 'a'])), (e: unknown) => e instanceof RingError && e.code === 'OTLPEDGE_RING_BAD_MEMBER' && /'a' is listed twice/.test(e.message));
  assert.throws(() => new HashRing(members([''])), (e: unknown) => e instanceof RingError && e.code === 'OTLPEDGE_RING_BAD_MEMBER');
  assert.throws(() => new HashRing(ten, 0), (e: unknown) => e instanceof RingError && /vnodes/.test(e.message));
  assert.equal(new HashRing(members(['solo'])).owner('anything').id, 'solo');
});
