/**
 * A circuit breaker for one backend: after `threshold` failures in a row it opens and nothing is sent for a
 * cool-down (doubling from `openMs` up to `maxOpenMs` while probes keep failing); then one request goes as a probe
 * (half-open). A success closes it. The exporter's own backoff paces retries while it is closed; the breaker stops a
 * down backend from being hammered by every batch that piles up meanwhile.
 */
export type BreakerState = 'closed' | 'open' | 'half_open';

export class CircuitBreaker {
  state: BreakerState = 'closed';
  private failures = 0;
  private openUntil = 0;
  private openFor: number;
  /** Times it opened. */
  opened = 0;

  constructor(
    private readonly threshold = 5,
    private readonly openMs = 5_000,
    private readonly maxOpenMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {
    this.openFor = openMs;
  }

  /** 0 when a request may go now (in half-open: the probe), else ms to wait. */
  waitMs(): number {
    if (this.state !== 'open') return 0;
    const left = this.openUntil - this.now();
    if (left > 0) return left;
    this.state = 'half_open';
    return 0;
  }

  success(): void {
    this.state = 'closed';
    this.failures = 0;
    this.openFor = this.openMs;
  }

  failure(): void {
    this.failures++;
    if (this.state === 'half_open') {
      this.openFor = Math.min(this.maxOpenMs, this.openFor * 2);
      this.open();
    } else if (this.state === 'closed' && this.failures >= this.threshold) this.open();
  }

  private open(): void {
    this.state = 'open';
    this.opened++;
    this.openUntil = this.now() + this.openFor;
  }
}
