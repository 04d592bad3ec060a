/**
 * `mqtt.broker.max_publish_rate`: how many messages a second one device connection may publish. A token bucket per
 * connection (as EMQX's per-client `messages_rate`), holding one second's worth, so a burst of that many passes and a
 * steady rate above it is refused message by message. Kept beside the connection object (a WeakMap), so it costs
 * nothing once the connection is gone and nothing at all when no rate is set.
 */
export class PublishRate {
  private readonly buckets = new WeakMap<object, { tokens: number; at: number; told: boolean }>();

  constructor(
    /** messages per second; 0 = no limit */
    readonly perSecond: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * 'ok' when `connection` may publish one more message now; 'over' when it may not, 'first_over' for the first
   * refusal after a message was let through (the device is told once per run of refusals, not once per message).
   */
  take(connection: object): 'ok' | 'over' | 'first_over' {
    if (this.perSecond <= 0) return 'ok';
    const now = this.now();
    let b = this.buckets.get(connection);
    if (b === undefined) this.buckets.set(connection, (b = { tokens: this.perSecond, at: now, told: false }));
    else {
      b.tokens = Math.min(this.perSecond, b.tokens + ((now - b.at) * this.perSecond) / 1000);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      b.told = false;
      return 'ok';
    }
    if (b.told) return 'over';
    b.told = true;
    return 'first_over';
  }
}
