import { itemCount, type LiveItem } from './messages.js';

/**
 * The messages waiting for one stream client (a WebSocket, or another node's subscription): bounded in messages (an
 * item of several counts for each), dropping the oldest items when full. What was dropped is counted and announced
 * ahead of the next messages, so a client always knows it missed some, and how many.
 */
export class LiveQueue {
  private items: LiveItem[] = [];
  private head = 0;
  /** Messages the items from head on count for. */
  private held = 0;
  /** Dropped since the last announcement. */
  private unannounced = 0;
  /** Dropped in all. */
  dropped = 0;
  /** When this queue started dropping, while it has not caught up since (null: not dropping). */
  droppingSince: number | null = null;

  constructor(private readonly max: number) {}

  /** Messages waiting. */
  get length(): number {
    return this.held;
  }

  /** Queues an item; how many older messages were dropped for it (the queue was full). */
  push(item: LiveItem): number {
    this.items.push(item);
    this.held += itemCount(item);
    if (this.held <= this.max) return 0;
    const before = this.dropped;
    // The oldest go, but never the item just queued: the client gets the newest.
    while (this.held > this.max && this.head < this.items.length - 1) {
      const n = itemCount(this.items[this.head++]);
      this.held -= n;
      this.unannounced += n;
      this.dropped += n;
    }
    this.droppingSince ??= Date.now();
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return this.dropped - before;
  }

  /** Whether queueing `item` would drop older messages (the queue has not room for it). */
  overflows(item: LiveItem): boolean {
    return this.held + itemCount(item) > this.max;
  }

  /**
   * Counts an item as dropped without holding it (its client is blocked and the queue full: keeping the newest
   * would only churn memory until the client reads again); announced like any drop. How many messages it was.
   */
  refuse(item: LiveItem): number {
    const n = itemCount(item);
    this.unannounced += n;
    this.dropped += n;
    this.droppingSince ??= Date.now();
    return n;
  }

  /** Messages dropped and not announced yet (reset by the caller that announces them). */
  takeUnannounced(): number {
    const n = this.unannounced;
    this.unannounced = 0;
    return n;
  }

  /** The oldest items, about `n` messages (at least one item). Once the queue is empty it counts as caught up. */
  take(n: number): LiveItem[] {
    const out: LiveItem[] = [];
    let taken = 0;
    while (this.head < this.items.length && (out.length === 0 || taken < n)) {
      const item = this.items[this.head++];
      out.push(item);
      taken += itemCount(item);
    }
    this.held -= taken;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
      this.droppingSince = null;
    }
    return out;
  }
}
