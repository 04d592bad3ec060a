/**
 * Log lines that a misbehaving fleet can trigger (10,000 devices with a stale password reconnecting every second)
 * must not flood the log or cost CPU: at most `maxPerInterval` lines per key per interval, then one summary line
 * "suppressed N similar messages" when the interval ends. Keys should come from a small set (a refusal reason),
 * not from device input, so the map stays small; windows are forgotten once they end.
 */

/** The part of a pino logger this needs. */
export interface WarnLogger {
  warn(obj: object, msg: string): void;
}

export interface RateLimitedLogOptions {
  /** lines let through per key per interval; default 10 */
  maxPerInterval?: number;
  /** interval length in ms; default 60000 */
  intervalMs?: number;
  /** clock, for tests; default Date.now */
  now?: () => number;
}

interface Window {
  start: number;
  emitted: number;
  suppressed: number;
}

export class RateLimitedLog {
  private readonly windows = new Map<string, Window>();
  private readonly max: number;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly logger: WarnLogger,
    options: RateLimitedLogOptions = {},
  ) {
    this.max = options.maxPerInterval ?? 10;
    this.intervalMs = options.intervalMs ?? 60_000;
    this.now = options.now ?? Date.now;
  }

  warn(key: string, obj: object, msg: string): void {
    const now = this.now();
    let w = this.windows.get(key);
    if (w !== undefined && now - w.start >= this.intervalMs) {
      this.summarize(key, w);
      w = undefined;
    }
    if (w === undefined) {
      w = { start: now, emitted: 0, suppressed: 0 };
      this.windows.set(key, w);
    }
    if (w.emitted < this.max) {
      w.emitted++;
      this.logger.warn(obj, msg);
      return;
    }
    w.suppressed++;
    // Without more traffic the summary would never be written; one unref'd timer covers every key.
    this.timer ??= setTimeout(() => this.flush(false), w.start + this.intervalMs - now).unref();
  }

  /** Writes the summaries of ended windows (of all windows with `all`) and forgets them. */
  flush(all = true): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const now = this.now();
    let nextEnd = Infinity;
    for (const [key, w] of this.windows) {
      if (all || now - w.start >= this.intervalMs) {
        this.summarize(key, w);
        this.windows.delete(key);
      } else if (w.suppressed > 0) {
        nextEnd = Math.min(nextEnd, w.start + this.intervalMs);
      }
    }
    if (nextEnd !== Infinity) this.timer = setTimeout(() => this.flush(false), Math.max(1, nextEnd - now)).unref();
  }

  private summarize(key: string, w: Window): void {
    if (w.suppressed > 0)
      this.logger.warn({ key, suppressed: w.suppressed }, `suppressed ${w.suppressed} similar messages`);
  }
}
