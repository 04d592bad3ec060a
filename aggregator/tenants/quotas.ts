import { int, keyed, obj, type Infer } from '../../protocol/config/schema.js';
import { ID_PATTERN, ID_RULE } from '../../protocol/ids.js';

/**
 * Per-tenant quotas (processors `quotas`, aggregator only). A tenant is what its senders' tokens name
 * (`auth.agent_tokens_file`); data of senders in no tenant is not limited. Limits are for the whole cluster and
 * each node enforces its part, as Mimir's "global" limits do: a rate is divided by the healthy members (senders
 * spread over them), a device count is multiplied by the node's share of the ring (devices are spread by it) and
 * rounded up. On one node both are exact.
 *
 * Rates are token buckets of one second's worth that may go into debt: a batch is taken while the bucket is not
 * empty (however large the batch — an agent's batches are never too big to ever pass), and the tenant's next data
 * waits until the debt is paid. Refused data is answered RETRY with a delay (uplink) or 429 with Retry-After
 * (OTLP): nothing is dropped, senders keep it and send it later. A tenant at its device quota gets no new devices on
 * the node: their data is dropped and counted (sending again cannot help until an operator raises the limit).
 */

const limit = (doc: string) => int(-1, -1, 1_000_000_000, `${doc}; 0 = no limit, -1 = as in default`);
const limits = (doc: string) =>
  obj(
    {
      devices: limit('devices the tenant may have in the cluster'),
      points_per_second: limit('metric data points per second the cluster takes from the tenant'),
      events_per_second: limit('events (log records) per second the cluster takes from the tenant'),
      bytes_per_second: limit(
        'bytes per second the cluster takes from the tenant, as received (compressed uplink and OTLP/HTTP bodies, OTLP/gRPC messages)',
      ),
    },
    doc,
  );

export const quotasSpec = obj(
  {
    default: limits('limits of every tenant not named under tenants (-1 here = no limit)'),
    tenants: keyed(
      limits('one tenant'),
      ID_PATTERN,
      ID_RULE,
      'limits of named tenants; a key left out (or -1) takes the default',
    ),
  },
  'per-tenant quotas on devices, points and events per second',
);

export type QuotasConfig = Infer<typeof quotasSpec>;
type Limits = QuotasConfig['default'];
export type RateQuota = 'points_per_second' | 'events_per_second' | 'bytes_per_second';

/** Where the node stands in the ring, for its part of each limit. */
export interface RingPart {
  /** Healthy members of the ring (at least 1). */
  members(): number;
  /** This node's share of the device space, 0–1. */
  share(): number;
}

/** A refusal: which quota, and when the tenant may send again. */
export interface QuotaRefusal {
  quota: RateQuota;
  retryAfterMs: number;
  message: string;
}

class Bucket {
  tokens = 0;
  at = -1;

  /** Takes `n` at `rate` per second; the ms to wait when the bucket is in debt (nothing taken), else 0. */
  take(n: number, rate: number, now: number): number {
    this.tokens = this.at < 0 ? rate : Math.min(rate, this.tokens + ((now - this.at) / 1000) * rate);
    this.at = now;
    if (this.tokens < 0) return Math.max(1, Math.ceil((-this.tokens / rate) * 1000));
    this.tokens -= n;
    return 0;
  }
}

export class Quotas {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly cfg: QuotasConfig,
    private readonly ring: RingPart,
    private readonly now: () => number = Date.now,
  ) {}

  /** A tenant's limits for the cluster (0 = none). */
  limitsOf(tenant: string): { [K in keyof Limits]: number } {
    const own = this.cfg.tenants[tenant];
    const pick = (k: keyof Limits) => {
      const v = own !== undefined && own[k] >= 0 ? own[k] : this.cfg.default[k];
      return Math.max(0, v);
    };
    return {
      devices: pick('devices'),
      points_per_second: pick('points_per_second'),
      events_per_second: pick('events_per_second'),
      bytes_per_second: pick('bytes_per_second'),
    };
  }

  /** The devices `tenant` may have on this node (0 = no limit). */
  deviceLimit(tenant: string): number {
    const all = this.limitsOf(tenant).devices;
    return all === 0 ? 0 : Math.max(1, Math.ceil(all * this.ring.share()));
  }

  /**
   * Takes `points`, `events` and `bytes` of `tenant` against its rates on this node; null when taken, else the
   * refusal. Data in no tenant ('') is never refused.
   */
  admit(tenant: string, points: number, events: number, bytes = 0): QuotaRefusal | null {
    if (tenant === '') return null;
    const l = this.limitsOf(tenant);
    const members = Math.max(1, this.ring.members());
    const now = this.now();
    for (const [quota, n] of [
      ['points_per_second', points],
      ['events_per_second', events],
      ['bytes_per_second', bytes],
    ] as const) {
      const all = l[quota];
      if (all === 0 || n <= 0) continue;
      const rate = all / members;
      const key = `${quota}\u0000${tenant}`;
      let b = this.buckets.get(key);
      if (b === undefined) this.buckets.set(key, (b = new Bucket()));
      const wait = b.take(n, rate, now);
      if (wait > 0)
        return {
          quota,
          retryAfterMs: wait,
          message: `tenant '${tenant}' is over its quota of ${all} ${UNITS[quota]} per second (${round(rate)} on this node of ${members}); retry in ${wait} ms`,
        };
    }
    return null;
  }
}

const round = (n: number) => Math.round(n * 10) / 10;
const UNITS: Record<RateQuota, string> = {
  points_per_second: 'points',
  events_per_second: 'events',
  bytes_per_second: 'bytes',
};
