import type { FleetTotals } from './fleet.js';

/**
 * The fleet's live status line on stderr. On a terminal it is one line rewritten in place every second:
 *
 *   devices 1,000/1,000 connected | sent 52,341 (10,012/s) | acked 52,300 | errors 0 | p99 ack 12 ms
 *
 * Piped into a file or CI log it is a plain line every 5 s (no carriage returns to garble the log); with --quiet
 * nothing. Acks and their latency appear only at QoS 1/2, where there are acks.
 */

export interface ProgressSource {
  totals(): FleetTotals;
  /** p99 ack latency (ms) since the previous call, or null when nothing was acked. */
  takeIntervalAckLatency(): number | null;
}

export type ProgressMode = 'tty' | 'lines' | 'off';

export interface ProgressOptions {
  /** Where to write; default process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Default: 'tty' when the stream is a terminal, else 'lines'. */
  mode?: ProgressMode;
  /** Whether the fleet expects acks (QoS 1/2); default true. */
  acks?: boolean;
  /** 1,000 ms between updates on a terminal; 5,000 ms between lines otherwise. */
  intervalMs?: number;
}

const n = (v: number): string => Math.round(v).toLocaleString('en-US');

/** One status line from two snapshots `dtMs` apart. */
export function formatProgress(
  cur: FleetTotals,
  prev: FleetTotals | null,
  dtMs: number,
  p99Ms: number | null,
  acks: boolean,
): string {
  const perSecond = prev === null || dtMs <= 0 ? 0 : ((cur.sent - prev.sent) * 1000) / dtMs;
  const parts = [`devices ${n(cur.connected)}/${n(cur.devices)} connected`, `sent ${n(cur.sent)} (${n(perSecond)}/s)`];
  if (cur.readings.sent !== cur.sent) {
    const readingsPerSecond = prev === null || dtMs <= 0 ? 0 : ((cur.readings.sent - prev.readings.sent) * 1000) / dtMs;
    parts.push(`readings ${n(cur.readings.sent)} (${n(readingsPerSecond)}/s)`);
  }
  if (acks) parts.push(`acked ${n(cur.acked)}`);
  parts.push(`errors ${n(cur.errors)}`);
  if (cur.reconnects > 0) parts.push(`reconnects ${n(cur.reconnects)}`);
  if (cur.behind > 0) parts.push(`behind ${n(cur.behind)}`);
  if (cur.backlog > 0) parts.push(`fleet backlog ${n(cur.backlog)}`);
  if (cur.rejections > 0) parts.push(`rejected ${n(cur.rejections)}`);
  if (acks) parts.push(`p99 ack ${p99Ms === null ? '-' : p99Ms < 10 ? p99Ms.toFixed(1) : n(p99Ms)} ms`);
  return parts.join(' | ');
}

export class ProgressDisplay {
  private readonly stream: NodeJS.WritableStream & { isTTY?: boolean };
  private readonly mode: ProgressMode;
  private readonly acks: boolean;
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | null = null;
  private prev: FleetTotals | null = null;
  private prevAt = 0;
  private drawn = false;

  constructor(
    private readonly source: ProgressSource,
    options: ProgressOptions = {},
  ) {
    this.stream = options.stream ?? process.stderr;
    this.mode = options.mode ?? (this.stream.isTTY ? 'tty' : 'lines');
    this.acks = options.acks ?? true;
    this.intervalMs = options.intervalMs ?? (this.mode === 'tty' ? 1000 : 5000);
  }

  start(): void {
    if (this.mode === 'off' || this.timer !== null) return;
    this.prev = this.source.totals();
    this.prevAt = performance.now();
    this.timer = setInterval(() => this.update(), this.intervalMs);
    this.timer.unref();
  }

  /** Writes a last update and ends the line, so what follows starts on a fresh one. */
  stop(): void {
    if (this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
    this.update();
    if (this.mode === 'tty' && this.drawn) this.stream.write('\n');
  }

  private update(): void {
    const now = performance.now();
    const cur = this.source.totals();
    const line = formatProgress(cur, this.prev, now - this.prevAt, this.source.takeIntervalAckLatency(), this.acks);
    this.prev = cur;
    this.prevAt = now;
    // \r returns to the line's start, ESC[K clears what a longer previous line left behind.
    this.stream.write(this.mode === 'tty' ? `\r${line}\x1b[K` : `${line}\n`);
    this.drawn = true;
  }
}
