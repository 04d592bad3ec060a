import type { Logger } from 'pino';
import { formatSize } from '../../protocol/config/units.js';
import type { ProcessorEntry } from '../../runtime/processors/chain.js';
import { MemoryLimiter, MemoryState, resolveLimits } from '../../runtime/processors/memory-limiter.js';
import type { MemoryLimiterConfig } from '../../runtime/processors/spec.js';
import type { AgentMetrics } from '../ops/metrics.js';

const STATE_LOG = {
  [MemoryState.OK]: 'memory back under the soft limit: taking input again',
  [MemoryState.SOFT]:
    'memory over the soft limit: QoS 0 messages dropped, QoS 1 and 2 held unacknowledged, new logins refused',
  [MemoryState.HARD]: 'memory over the hard limit: input refused and a full garbage collection forced on each check',
};

/** The agent's memory limiter from its `processors:` list (null when none), reporting to /metrics and the log. */
export function createMemoryLimiter(
  processors: readonly ProcessorEntry[],
  metrics: AgentMetrics,
  log: Logger,
  rss: () => number,
): MemoryLimiter | null {
  const entry = processors.find((p) => p.kind === 'memory_limiter');
  if (entry === undefined) return null;
  const cfg = entry.config as MemoryLimiterConfig;
  const limits = resolveLimits(cfg);
  metrics.memoryLimit.set({ limit: 'soft' }, limits.soft);
  metrics.memoryLimit.set({ limit: 'hard' }, limits.hard);
  log.info(
    { soft: limits.soft, hard: limits.hard },
    `memory limiter: refusing input over ${formatSize(limits.soft)}, hard limit ${formatSize(limits.hard)} (${limits.source})`,
  );
  return new MemoryLimiter(
    limits,
    cfg.check_interval,
    {
      onState: (state, rssBytes) => {
        metrics.memoryState.set(state);
        const fields = { rss: rssBytes, soft: limits.soft, hard: limits.hard };
        if (state === MemoryState.OK) log.info(fields, STATE_LOG[state]);
        else log.warn(fields, STATE_LOG[state]);
      },
    },
    rss,
  );
}
