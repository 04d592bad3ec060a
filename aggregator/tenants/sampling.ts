import { duration, int, obj, oneOf, type Infer } from '../../protocol/config/schema.js';
import { filterLogRecords } from '../../protocol/otlp/logs-filter.js';
import type { RingPart } from './quotas.js';

/**
 * Adaptive sampling of events (log records) per tenant (processors `sampling`, aggregator only). Records of
 * `keep_severity_at_least` and above are always kept; the rest are kept with a probability set, every `interval`,
 * to what brings the tenant's rate of them to `logs_per_second` (1 while under it), and lowered at once within an
 * interval when they run at more than twice the target. Each record kept with a
 * probability under 1 carries `sampling.adjusted_count` = 1 / probability (a double attribute), so counts can be
 * re-weighted downstream. Sampling is systematic (every k-th record at probability 1/k, carried over between
 * requests), so the rate kept is exact, not a coin's. Metrics are never sampled. Data of senders in no tenant is
 * sampled as a tenant of its own. The target is the cluster's: each node keeps its part (target / healthy
 * members), as quotas do.
 */

export const SEVERITIES = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
/** OTLP SeverityNumber where each name starts (TRACE 1–4, DEBUG 5–8, INFO 9–12, WARN 13–16, ERROR 17–20, FATAL 21+). */
const SEVERITY_FLOOR: Record<(typeof SEVERITIES)[number], number> = {
  trace: 1,
  debug: 5,
  info: 9,
  warn: 13,
  error: 17,
  fatal: 21,
};

export const ADJUSTED_COUNT_ATTRIBUTE = 'sampling.adjusted_count';

export const samplingSpec = obj(
  {
    logs_per_second: int(
      100,
      1,
      1_000_000_000,
      'events per second kept per tenant across the cluster, not counting those always kept',
    ),
    keep_severity_at_least: oneOf(SEVERITIES, 'error', 'events of this severity and above are always kept'),
    interval: duration('10s', 1000, "how often each tenant's sampling probability is set again"),
  },
  'keep events of each tenant near a target rate; errors and above always kept',
);

export type SamplingConfig = Infer<typeof samplingSpec>;

/** What sampling did to one request. */
export interface Sampled {
  request: Uint8Array;
  /** Records kept with a probability (marked when it was under 1). */
  kept: number;
  /** Records kept for their severity. */
  forced: number;
  /** Records left out. */
  left: number;
}

class TenantSampler {
  probability = 1;
  private carry = 0;
  private seen = 0;
  private since = -1;

  /**
   * At the end of each interval the probability is set from the interval's rate; within one, as soon as events run
   * at more than twice the target (a burst, even one request of thousands), it is lowered at once.
   */
  adjust(now: number, target: number, intervalMs: number): void {
    if (this.since < 0) this.since = now;
    const elapsed = now - this.since;
    if (elapsed >= intervalMs) {
      const rate = this.seen / (elapsed / 1000);
      this.probability = rate <= target ? 1 : target / rate;
      this.seen = 0;
      this.since = now;
      return;
    }
    // Records arrive in requests: the window is taken to reach one second past now, so two requests a second apart
    // do not read as twice the rate.
    const seconds = elapsed / 1000 + 1;
    if (this.seen > 2 * target * seconds) this.probability = Math.min(this.probability, (target * seconds) / this.seen);
  }

  /** 0: leave the record out; 1: keep it; more: keep it, standing for that many. */
  decide(now: number, target: number, intervalMs: number): number {
    this.seen++;
    this.adjust(now, target, intervalMs);
    if (this.probability >= 1) return 1;
    this.carry += this.probability;
    if (this.carry < 1) return 0;
    this.carry -= 1;
    return 1 / this.probability;
  }
}

export class LogSampler {
  private readonly tenants = new Map<string, TenantSampler>();
  private readonly keepAt: number;

  constructor(
    private readonly cfg: SamplingConfig,
    private readonly ring: RingPart,
    private readonly now: () => number = Date.now,
  ) {
    this.keepAt = SEVERITY_FLOOR[cfg.keep_severity_at_least as (typeof SEVERITIES)[number]];
  }

  /** Samples an inflated ExportLogsServiceRequest of `tenant`; the same bytes when every record is kept unmarked. */
  sample(tenant: string, request: Uint8Array): Sampled {
    let s = this.tenants.get(tenant);
    if (s === undefined) this.tenants.set(tenant, (s = new TenantSampler()));
    const target = this.cfg.logs_per_second / Math.max(1, this.ring.members());
    const now = this.now();
    s.adjust(now, target, this.cfg.interval);
    let forced = 0;
    const t = s;
    const r = filterLogRecords(
      request,
      (severity) => {
        if (severity >= this.keepAt) {
          forced++;
          return 1;
        }
        return t.decide(now, target, this.cfg.interval);
      },
      ADJUSTED_COUNT_ATTRIBUTE,
    );
    return { request: r.request, kept: r.kept - forced, forced, left: r.left };
  }

  /** Each tenant's current probability ('' = senders in no tenant), for /metrics. */
  probabilities(): Map<string, number> {
    return new Map([...this.tenants].map(([t, s]) => [t, s.probability]));
  }
}
