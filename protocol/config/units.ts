/**
 * Sizes and durations as operators write them in YAML: `256MiB`, `64KB`, `1.5GiB`, `200ms`, `30s`, `7d`.
 * Plain numbers are bytes and milliseconds. Pure functions: they return null for text they cannot read, and the
 * caller turns that into an error naming the key.
 */

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

const DURATION_UNITS: Record<string, number> = {
  '': 1,
  ms: 1,
  s: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** Bytes from `256MiB`-style text or a number; null when unreadable or negative. */
export function parseSize(v: unknown): number | null {
  return parseWithUnits(v, SIZE_UNITS, true);
}

/** Milliseconds from `200ms`/`30s`/`7d`-style text or a number; `1m30s` is accepted; null when unreadable. */
export function parseDuration(v: unknown): number | null {
  if (typeof v === 'string' && /^\s*(\d+(\.\d+)?[a-z]+\s*){2,}$/i.test(v)) {
    let total = 0;
    for (const m of v.matchAll(/(\d+(?:\.\d+)?)([a-z]+)/gi)) {
      const unit = DURATION_UNITS[m[2].toLowerCase()];
      if (unit === undefined) return null;
      total += Number(m[1]) * unit;
    }
    return Math.round(total);
  }
  const ms = parseWithUnits(v, DURATION_UNITS, false);
  return ms === null ? null : Math.round(ms);
}

function parseWithUnits(v: unknown, units: Record<string, number>, integral: boolean): number | null {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? (integral ? Math.floor(v) : v) : null;
  if (typeof v !== 'string') return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
  if (!m) return null;
  const unit = units[m[2].toLowerCase()];
  if (unit === undefined) return null;
  const n = Number(m[1]) * unit;
  return integral ? Math.floor(n) : n;
}

/** `268435456` → `256MiB`, for messages and `--help`. */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= size && bytes % (size / 16) === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
