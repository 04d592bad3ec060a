import type { LiveItem } from './messages.js';

/**
 * The messages waiting for one stream client (a WebSocket, or another node's subscription): bounded, dropping the
 * oldest when full. What was dropped is counted and announced ahead of the next messages, so a client always knows
 * it missed some, and how many.
 */
export class LiveQueue {
  private items: LiveItem[] = [];
  private head = 0;
  /** Dropped since the last announcement. */
  private unannounced = 0;
  /** Dropped in all. */
  dropped = 0;
  /** When this queue started dropping, while it has not caught up since (null: not dropping). */
  droppingSince: number | null = null;

  constructor(private readonly max: number) {}

  get length(): number {
    return this.items.length - this.head;
  }

  /** Queues a message; true when the queue was full and the oldest was dropped for it. */
  push(item: LiveItem): boolean {
    this.items.push(item);
    if (this.length <= this.max) return false;
    this.head++;
    this.unannounced++;
    this.dropped++;
    this.droppingSince ??= Date.now();
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return true;
  }

  /** Messages dropped and not announced yet (reset by the caller that announces them). */
  takeUnannounced(): number {
    const n = this.unannounced;
    this.unannounced = 0;
    return n;
  }

  /** Up to `n` of the oldest messages. Once the queue is empty it counts as caught up. */
  take(n: number): LiveItem[] {
    const end = Math.min(this.items.length, this.head + n);
    const out = this.items.slice(this.head, end);
    this.head = end;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
      this.droppingSince = null;
    }
    return out;
  }
}
