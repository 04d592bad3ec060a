import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../../../protocol/config/schema.js';
import {
  cgroupMemoryLimit,
  checkMemoryLimiter,
  MemoryLimiter,
  MemoryState,
  resolveLimits,
} from '../../../../runtime/processors/memory-limiter.js';
import { memoryLimiterSpec, type MemoryLimiterConfig } from '../../../../runtime/processors/spec.js';

const MiB = 1 << 20;

function config(input: unknown): MemoryLimiterConfig {
  const { config, problems } = validateConfig(memoryLimiterSpec, input, { env: {} });
  assert.deepEqual(problems, []);
  return config;
}

test('limits: absolute, or a percentage of the cgroup limit, else of host memory; spike 20 % by default', () => {
  assert.deepEqual(resolveLimits(config({ limit: '200MiB', spike: '40MiB' })), {
    soft: 160 * MiB,
    hard: 200 * MiB,
    source: 'limit',
  });
  const l = resolveLimits(config({ limit_percent: 50 }), { cgroup: 512 * MiB, total: 8192 * MiB });
  assert.equal(l.hard, 256 * MiB);
  assert.equal(l.soft, 256 * MiB - Math.floor((256 * MiB) / 5));
  assert.match(l.source, /50 % of the cgroup memory limit \(512MiB\)/);
  assert.equal(resolveLimits(config({ limit_percent: 25 }), { cgroup: null, total: 1024 * MiB }).hard, 256 * MiB);
});

test('the cgroup limit is read from v2 or v1, and "max" or the v1 huge number mean none', () => {
  const files = (m: Record<string, string>) => (p: string) => {
    if (p in m) return m[p];
    throw new Error('ENOENT');
  };
  assert.equal(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory.max': '268435456\n' })), 256 * MiB);
  assert.equal(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory.max': 'max\n' })), null);
  assert.equal(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '134217728' })), 128 * MiB);
  assert.equal(
    cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712' })),
    null,
  );
  assert.equal(cgroupMemoryLimit(files({})), null);
});

test('a limiter config must give exactly one limit, and a spike under it', () => {
  const p = (input: unknown) => checkMemoryLimiter(config(input), 'processors[0].memory_limiter');
  assert.match(p({})[0].message, /exactly one of limit .* and limit_percent/);
  assert.match(p({ limit: '100MiB', limit_percent: 50 })[0].path, /\.limit$/);
  assert.deepEqual(p({ limit: '100MiB', spike: '100MiB' }), [
    { path: 'processors[0].memory_limiter.spike', message: '100MiB must be less than limit (100MiB)' },
  ]);
  assert.deepEqual(p({ limit: '100MiB' }), []);
});

test('states follow RSS: refusing from the soft limit, waiting input let go in order when back under it', () => {
  let rss = 10 * MiB;
  const seen: MemoryState[] = [];
  const m = new MemoryLimiter(
    { soft: 80 * MiB, hard: 100 * MiB, source: 'limit' },
    1000,
    {
      onState: (s) => seen.push(s),
    },
    () => rss,
  );
  assert.equal(m.check(), MemoryState.OK);
  const order: number[] = [];
  m.whenAccepting(() => order.push(0));
  assert.deepEqual(order, [0], 'taken at once while under');
  rss = 90 * MiB;
  assert.equal(m.check(), MemoryState.SOFT);
  assert.equal(m.refusing, true);
  m.whenAccepting(() => order.push(1));
  m.whenAccepting(() => order.push(2));
  rss = 150 * MiB; // over the hard limit: a full GC is forced, and RSS read again
  assert.equal(m.check(), MemoryState.HARD);
  assert.deepEqual(order, [0]);
  rss = 79 * MiB;
  assert.equal(m.check(), MemoryState.OK);
  assert.deepEqual(order, [0, 1, 2]);
  assert.deepEqual(seen, [MemoryState.SOFT, MemoryState.HARD, MemoryState.OK]);
});
