import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { totalmem } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ConfigProblem } from '../../protocol/config/schema.js';
import { formatSize } from '../../protocol/config/units.js';
import type { MemoryLimiterConfig } from './spec.js';
import type { ProcessorEntry } from './chain.js';

/**
 * Whether new input is taken now, and a way to wait until it is: what receivers ask before they take more work
 * (agent/README.md "Processors", memory_limiter).
 */
export interface Admission {
  readonly refusing: boolean;
  /** `bytes` of input were taken: a flood is checked every INPUT_CHECK_BYTES, not only on the interval. */
  taken(bytes: number): void;
  /** Calls `cb` once input is taken again (at once when it is now). */
  whenAccepting(cb: () => void): void;
}

export const enum MemoryState {
  /** Under the soft limit: input is taken. */
  OK = 0,
  /** Over the soft limit (limit − spike): new input is refused the protocol's way. */
  SOFT = 1,
  /** Over the hard limit: refused, and a full garbage collection forced on each check. */
  HARD = 2,
}

export interface MemoryLimits {
  soft: number;
  hard: number;
  /** Where the hard limit came from, for the log: "limit", or "80 % of the cgroup limit (…)". */
  source: string;
}

/** The cgroup's memory limit in bytes (v2, then v1), or null when there is none. */
export function cgroupMemoryLimit(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): number | null {
  for (const path of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    let text: string;
    try {
      text = read(path).trim();
    } catch {
      continue;
    }
    const n = Number(text);
    // v2 says "max"; v1 says a huge number (PAGE_COUNTER_MAX) when unlimited.
    if (text !== 'max' && Number.isSafeInteger(n) && n > 0 && n < 2 ** 60) return n;
    return null;
  }
  return null;
}

export function checkMemoryLimiter(cfg: MemoryLimiterConfig, path: string): ConfigProblem[] {
  if (cfg.limit > 0 === cfg.limit_percent > 0)
    return [
      {
        path: `${path}.limit`,
        message: 'set exactly one of limit (e.g. 200MiB) and limit_percent (e.g. 80, of the cgroup or host memory)',
      },
    ];
  if (cfg.limit > 0 && cfg.spike >= cfg.limit)
    return [
      { path: `${path}.spike`, message: `${formatSize(cfg.spike)} must be less than limit (${formatSize(cfg.limit)})` },
    ];
  return [];
}

/** The soft and hard limits of a checked config on this machine. */
export function resolveLimits(
  cfg: MemoryLimiterConfig,
  machine: { cgroup: number | null; total: number } = { cgroup: cgroupMemoryLimit(), total: totalmem() },
): MemoryLimits {
  let hard = cfg.limit;
  let source = 'limit';
  if (hard === 0) {
    const of = machine.cgroup ?? machine.total;
    hard = Math.floor((of * cfg.limit_percent) / 100);
    source = `${cfg.limit_percent} % of the ${machine.cgroup !== null ? 'cgroup memory limit' : 'host memory'} (${formatSize(of)})`;
  }
  const spike = cfg.spike > 0 && cfg.spike < hard ? cfg.spike : Math.floor(hard / 5);
  return { soft: hard - spike, hard, source };
}

/**
 * Input between two reads of RSS besides the interval's: at 100 MB/s of payloads a 1 s interval would let 100 MB in
 * (several times that once decoded) before refusing; a read costs ~10 µs, so once per MiB is free.
 */
const INPUT_CHECK_BYTES = 1 << 20;

/** Least time between two full collections forced while over the soft limit only. */
const SOFT_GC_MS = 250;

let fullGc: (() => void) | null = null;

/** A full, synchronous garbage collection (the process was not started with --expose-gc, so it is exposed here). */
function forceFullGc(): void {
  if (fullGc === null) {
    setFlagsFromString('--expose-gc');
    fullGc = runInNewContext('gc') as () => void;
  }
  fullGc();
}

export interface MemoryLimiterHooks {
  onState?(state: MemoryState, rssBytes: number): void;
}

/**
 * Reads resident memory every `check_interval` and says whether input is taken (as the Collector's memory_limiter,
 * with RSS rather than the Go heap: what the kernel's OOM killer and a cgroup limit count). Over the soft limit,
 * receivers refuse new work the protocol's way until it is back under; over the hard limit a full garbage collection
 * is also forced on each check. Hysteresis is the spike itself: refusing starts at `soft` and ends under it.
 */
export class MemoryLimiter implements Admission {
  private current = MemoryState.OK;
  private timer: NodeJS.Timeout | null = null;
  private waiting: (() => void)[] = [];
  private input = 0;
  private lastGc = -Infinity;

  constructor(
    readonly limits: MemoryLimits,
    private readonly intervalMs: number,
    private readonly hooks: MemoryLimiterHooks = {},
    private readonly rss: () => number = () => process.memoryUsage.rss(),
  ) {}

  get state(): MemoryState {
    return this.current;
  }

  get refusing(): boolean {
    return this.current !== MemoryState.OK;
  }

  taken(bytes: number): void {
    this.input += bytes;
    if (this.input >= INPUT_CHECK_BYTES) this.check();
  }

  whenAccepting(cb: () => void): void {
    if (this.current === MemoryState.OK) cb();
    else this.waiting.push(cb);
  }

  start(): void {
    this.check();
    this.timer ??= setInterval(() => this.check(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.release();
  }

  /** Reads RSS once and moves between the states. */
  check(): MemoryState {
    this.input = 0;
    let rss = this.rss();
    // Over the hard limit a full collection on every check; over the soft one at most every SOFT_GC_MS: what was
    // refused is waiting, and garbage from the work already done would otherwise keep RSS up until V8's own memory
    // reducer ran, seconds later (as the Collector's min_gc_interval_when_soft_limited).
    const now = performance.now();
    if (rss >= this.limits.hard || (rss >= this.limits.soft && now - this.lastGc >= SOFT_GC_MS)) {
      forceFullGc();
      this.lastGc = now;
      rss = this.rss();
    }
    const next =
      rss >= this.limits.hard ? MemoryState.HARD : rss >= this.limits.soft ? MemoryState.SOFT : MemoryState.OK;
    if (next !== this.current) {
      this.current = next;
      this.hooks.onState?.(next, rss);
      if (next === MemoryState.OK) this.release();
    }
    return next;
  }

  /** Runs what waited for input to be taken again, in the order it came. */
  private release(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const cb of waiting) cb();
  }
}

const STATE_LOG = {
  [MemoryState.OK]: 'memory back under the soft limit: taking input again',
  [MemoryState.SOFT]: 'memory over the soft limit: new input refused until it is back under',
  [MemoryState.HARD]: 'memory over the hard limit: input refused and a full garbage collection forced on each check',
};

/** Where a binary shows its memory limiter (/metrics gauges). */
export interface MemoryLimiterGauges {
  limits(soft: number, hard: number): void;
  state(state: MemoryState): void;
}

/**
 * The memory limiter of a `processors:` list (null when it has none), reporting its limits and states to `gauges`
 * and the log; `refusing` says in the log what refusing means for this binary.
 */
export function createMemoryLimiter(
  processors: readonly ProcessorEntry[],
  gauges: MemoryLimiterGauges,
  log: Logger,
  refusing: string,
  rss: () => number = () => process.memoryUsage.rss(),
): MemoryLimiter | null {
  const entry = processors.find((p) => p.kind === 'memory_limiter');
  if (entry === undefined) return null;
  const cfg = entry.config as MemoryLimiterConfig;
  const limits = resolveLimits(cfg);
  gauges.limits(limits.soft, limits.hard);
  log.info(
    { soft: limits.soft, hard: limits.hard },
    `memory limiter: refusing input over ${formatSize(limits.soft)}, hard limit ${formatSize(limits.hard)} (${limits.source})`,
  );
  return new MemoryLimiter(
    limits,
    cfg.check_interval,
    {
      onState: (state, rssBytes) => {
        gauges.state(state);
        const fields = { rss: rssBytes, soft: limits.soft, hard: limits.hard };
        if (state === MemoryState.OK) log.info(fields, STATE_LOG[state]);
        else log.warn(fields, state === MemoryState.SOFT ? `${STATE_LOG[state]} (${refusing})` : STATE_LOG[state]);
      },
    },
    rss,
  );
}
