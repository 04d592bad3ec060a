/**
 * Exponential backoff with jitter for a peer that is down (the OpenTelemetry exporters' retry shape): the first
 * wait is INITIAL_MS, each failure multiplies it, it never exceeds MAX_MS, and each wait is spread ±JITTER so a fleet
 * of gateways that lost the same aggregator does not come back in lockstep.
 */
export const INITIAL_MS = 500;
export const MAX_MS = 30_000;
export const MULTIPLIER = 2;
export const JITTER = 0.2;

export class Backoff {
  private attempt = 0;

  constructor(
    private readonly initialMs = INITIAL_MS,
    private readonly maxMs = MAX_MS,
    private readonly random: () => number = Math.random,
  ) {}

  /** The next wait, ms. */
  next(): number {
    const base = Math.min(this.maxMs, this.initialMs * MULTIPLIER ** this.attempt);
    this.attempt++;
    return Math.round(base * (1 - JITTER + 2 * JITTER * this.random()));
  }

  reset(): void {
    this.attempt = 0;
  }

  get failures(): number {
    return this.attempt;
  }
}
