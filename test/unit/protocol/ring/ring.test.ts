import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { DEFAULT_VNODES, HashRing, isValidAddress, PROBES, type RingMember } from '../../../../protocol/ring/ring.js';
import { fmix32, murmur3 } from '../../../../protocol/ring/hash.js';
import { RingError, RingErrorCodes } from '../../../../protocol/errors.js';

const members = (ids: string[]): RingMember[] =>
  ids.map((id, i) => ({ id, address: `10.0.${i >> 8}.${i & 255}:4317` }));
const ten = members(Array.from({ length: 10 }, (_, i) => `agg-${i}`));

/** Device ids as fleets name them: zero-padded serials, plant/line paths, gateway-scoped meters. */
const devices = Array.from({ length: 100_000 }, (_, i) => {
  const serial = String(i).padStart(6, '0');
  if (i % 3 === 0) return `dev-${serial}`;
  if (i % 3 === 1) return `sensor:plant${i % 9}:${String(i).padStart(5, '0')}`;
  return `gw-${String(i % 40).padStart(2, '0')}.meter-${serial}`;
});

let prng = 0x2545f491;
function random(n: number): number {
  prng = (Math.imul(prng, 1103515245) + 12345) >>> 0;
  return prng % n;
}
function word(): string {
  const letters = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (let len = 3 + random(10); len > 0; len--) s += letters[random(letters.length)];
  return s;
}

/** 10-member sets named as operators name nodes: prefix and number, host:port, Kubernetes DNS, random names. */
function memberSets(): { label: string; set: RingMember[] }[] {
  const tenOf = (f: (i: number) => string) => members(Array.from({ length: 10 }, (_, i) => f(i)));
  const sets = [
    { label: 'agg-0..agg-9', set: ten },
    { label: '10.1.2.x:4317', set: tenOf((i) => `10.1.2.${i + 1}:4317`) },
    { label: 'StatefulSet DNS', set: tenOf((i) => `otlp-edge-aggregator-${i}.otlp-edge.monitoring.svc.cluster.local`) },
    { label: 'node01..node10', set: tenOf((i) => `node${String(i + 1).padStart(2, '0')}`) },
  ];
  for (let s = 0; s < 12; s++) {
    const prefix = word();
    const port = 1024 + random(60_000);
    const f = [
      (i: number) => `${prefix}-${i}`,
      () => `${word()}.${prefix}.internal`,
      () => `${random(256)}.${random(256)}.${random(256)}.${random(256)}:${port}`,
    ][s % 3];
    const ids = new Set<string>();
    for (let i = 0; ids.size < 10; i++) ids.add(f(i));
    sets.push({ label: `random set ${s} (${[...ids][0]}, …)`, set: members([...ids]) });
  }
  return sets;
}

function owners(ring: HashRing): string[] {
  return devices.map((d) => ring.owner(d).id);
}

/** The placement contract of ring.ts written naively: every probe against every vnode, least (distance, probe, id). */
function referenceOwner(ids: string[], vnodes: number, deviceId: string): string {
  const p0 = murmur3(deviceId);
  let best: { d: number; k: number; id: string } | undefined;
  for (let k = 0; k < PROBES; k++) {
    const probe = k === 0 ? p0 : fmix32((p0 + k * 0x9e3779b9) % 2 ** 32);
    for (const id of ids) {
      for (let i = 0; i < vnodes; i++) {
        const d = (murmur3(`${id}#${i}`) - probe + 2 ** 32) % 2 ** 32;
        if (!best || d < best.d || (d === best.d && (k < best.k || (k === best.k && id < best.id))))
          best = { d, k, id };
      }
    }
  }
  return best!.id;
}

test('10 members, 100,000 devices: the busiest member holds at most 1.15x the mean, for many member-name sets', (t) => {
  const measured: string[] = [];
  for (const { label, set } of memberSets()) {
    const ring = new HashRing(set);
    assert.equal(ring.vnodes, DEFAULT_VNODES);
    const counts = new Map<string, number>();
    for (const o of owners(ring)) counts.set(o, (counts.get(o) ?? 0) + 1);
    const ratio = Math.max(...counts.values()) / (devices.length / set.length);
    measured.push(`${label}: ${ratio.toFixed(3)}`);
    assert.ok(ratio <= 1.15, `busiest member holds ${ratio.toFixed(3)}x the mean with ${label}`);
    // share() is what /v1/ring reports: it must agree with where devices actually land.
    const share = ring.share();
    assert.ok(Math.abs([...share.values()].reduce((a, b) => a + b, 0) - 1) < 1e-9);
    for (const [id, s] of share)
      assert.ok(
        Math.abs(s - (counts.get(id) ?? 0) / devices.length) < 0.01,
        `share of ${id} is ${s}, devices ${counts.get(id)}`,
      );
  }
  t.diagnostic(`busiest / mean: ${measured.join('; ')}`);
});

test('adding one of N members moves about 1/N of the devices, all to it; removing one moves only its own', () => {
  for (const { label, set } of memberSets().slice(0, 4)) {
    const before = new HashRing(set);
    const a = owners(before);

    // Joining: the newcomer takes its fair share of the grown ring, so N = 11 (the new member count).
    const grown = before.withMember({ id: 'joiner-1', address: '10.9.0.1:4317' });
    const b = owners(grown);
    let moved = 0;
    for (let i = 0; i < devices.length; i++) {
      if (a[i] === b[i]) continue;
      moved++;
      assert.equal(b[i], 'joiner-1', `${devices[i]} moved from ${a[i]} to ${b[i]}, which both stayed (${label})`);
    }
    assert.ok(
      moved >= (0.8 / 11) * devices.length && moved <= (1.2 / 11) * devices.length,
      `join moved ${moved} of ${devices.length}, 1/11 = ${Math.round(devices.length / 11)} (${label})`,
    );

    // Leaving: exactly the leaver's devices move, its share of the 10-member ring it left, so N = 10 (the count
    // before; with N = 9, the count after, the bounds would be looser, not tighter).
    const leaver = set[3].id;
    const shrunk = before.withoutMember(leaver);
    const c = owners(shrunk);
    let lost = 0;
    for (let i = 0; i < devices.length; i++) {
      if (a[i] === c[i]) continue;
      lost++;
      assert.equal(a[i], leaver, `${devices[i]} moved from ${a[i]} to ${c[i]}, which both stayed (${label})`);
    }
    assert.ok(
      lost >= (0.8 / 10) * devices.length && lost <= (1.2 / 10) * devices.length,
      `leave moved ${lost} of ${devices.length} (${label})`,
    );
  }
});

test('owners follow the documented placement contract exactly', () => {
  const rings = [
    new HashRing(ten),
    new HashRing(members(['gw-a', 'gw-b', 'gw-c']), 7),
    new HashRing(members(['x']), 1),
  ];
  for (const ring of rings) {
    const ids = ring.members.map((m) => m.id);
    for (const d of devices.slice(0, 600)) assert.equal(ring.owner(d).id, referenceOwner(ids, ring.vnodes, d), d);
  }
});

test('vnodes at the same position go to the lower member id, whatever order members are listed in', () => {
  // murmur3('agg-14015#0') === murmur3('agg-29121#0'): with one vnode each, the two points coincide.
  assert.equal(murmur3('agg-14015#0'), murmur3('agg-29121#0'));
  for (const order of [
    ['agg-14015', 'agg-29121'],
    ['agg-29121', 'agg-14015'],
  ]) {
    const ring = new HashRing(members(order), 1);
    for (const d of devices.slice(0, 200)) assert.equal(ring.owner(d).id, 'agg-14015');
  }
});

test('known devices keep their owners (the placement is a cross-process contract)', () => {
  const ring = new HashRing(ten);
  const ids = ['dev-000001', 'dev-000123', 'sensor:plant7:00042', 'pump-7', 'gw3.meter-17'];
  assert.deepEqual(
    ids.map((d) => ring.owner(d).id),
    ['agg-1', 'agg-2', 'agg-5', 'agg-3', 'agg-1'],
  );
  // The version is murmur3 of the JSON of [format, vnodes, sorted [id, address] pairs]: any process can compute it.
  assert.equal(ring.version, murmur3(JSON.stringify(['otlp-edge-ring/1', 128, ten.map((m) => [m.id, m.address])])));
  assert.equal(ring.version, 0xc5301f52);
});

test('the owner of a device is the same in a separate process', () => {
  const sample = devices.slice(0, 3000);
  const here = new HashRing(ten);
  const url = new URL('../../../../protocol/ring/ring.js', import.meta.url).href;
  const script = `import { HashRing } from ${JSON.stringify(url)};
    const [ids, ms] = JSON.parse(process.argv[1]);
    const ring = new HashRing(ms.reverse());
    process.stdout.write(JSON.stringify({ version: ring.version, owners: ids.map((d) => ring.owner(d).id) }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify([sample, ten])], {
    encoding: 'utf8',
  });
  assert.deepEqual(JSON.parse(out), { version: here.version, owners: sample.map((d) => here.owner(d).id) });
});

test('the version changes whenever membership changes and agrees for the same members in any order', () => {
  const a = new HashRing(ten);
  const shuffled = [...ten];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = random(i + 1);
    [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
  }
  assert.equal(new HashRing(shuffled).version, a.version);
  assert.equal(new HashRing([...ten].reverse()).version, a.version);
  assert.deepEqual(new HashRing([...ten].reverse()).members, a.members);
  const changed = [
    a.withoutMember('agg-0'),
    a.withMember({ id: 'agg-10', address: '10.0.0.10:4317' }),
    a.withMember({ id: 'agg-1', address: '10.9.9.9:4317' }), // same id, new address
    new HashRing(ten, 64),
    new HashRing(members(ten.map((m) => m.id + 'x'))),
  ];
  const versions = new Set([a.version, ...changed.map((r) => r.version)]);
  assert.equal(versions.size, changed.length + 1, 'every change gives a new version');
  assert.ok(!versions.has(0));
  assert.equal(a.withoutMember('no-such-member'), a);
  assert.equal(
    a.withMember({ id: 'agg-1', address: '10.9.9.9:4317' }).members.find((m) => m.id === 'agg-1')?.address,
    '10.9.9.9:4317',
  );
});

test('an empty ring, empty or duplicate ids and bad vnodes are coded errors that say what to fix', () => {
  const coded = (code: string, text: RegExp) => (e: unknown) =>
    e instanceof RingError && e.code === code && text.test(e.message);
  const empty = new HashRing([], 128);
  assert.equal(empty.size, 0);
  assert.deepEqual(empty.share(), new Map());
  assert.throws(() => empty.owner('dev-1'), coded(RingErrorCodes.EMPTY, /cluster\.members/));
  assert.throws(
    () => new HashRing(members(['only'])).withoutMember('only').ownerIndex('x'),
    coded(RingErrorCodes.EMPTY, /no members/),
  );
  assert.throws(() => new HashRing(members(['a', 'b', 'a'])), coded(RingErrorCodes.BAD_MEMBER, /'a' is listed twice/));
  assert.throws(() => new HashRing(members(['ok', ''])), coded(RingErrorCodes.BAD_MEMBER, /non-empty id, got ""/));
  for (const bad of [0, -1, 1.5, Number.NaN, 65_536])
    assert.throws(
      () => new HashRing(ten, bad),
      coded(RingErrorCodes.BAD_MEMBER, new RegExp(`vnodes .* got ${String(bad)}`)),
    );
  assert.throws(() => new HashRing(ten, '128' as unknown as number), coded(RingErrorCodes.BAD_MEMBER, /got "128"/));
  assert.equal(new HashRing(members(['solo'])).owner('anything').id, 'solo');
});

test('member addresses are HOST:PORT of at most 255 bytes (agents store them in a 1-byte length)', () => {
  for (const ok of [
    '10.0.0.1:4317',
    'agg-0.aggs.ns.svc.cluster.local:4317',
    '[fd00::1]:4317',
    `${'h'.repeat(249)}:4317`,
  ])
    assert.ok(isValidAddress(ok), ok);
  for (const bad of [
    '10.0.0.1',
    ':4317',
    '10.0.0.1:0',
    '10.0.0.1:70000',
    'a b:1',
    `${'h'.repeat(251)}:4317`,
    'ü'.repeat(126) + ':1',
  ])
    assert.ok(!isValidAddress(bad), bad);
});
