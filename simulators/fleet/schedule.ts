/** Between wake-ups of the scheduler; small enough that a device's turn is at most this late, large enough that a
 *  wake-up has a batch of messages to send at high rates. */
const TICK_MS = 10;
/** Turns handed out per wake-up before yielding to I/O (acks) when the process is behind its schedule. */
const MAX_BATCH = 2000;

/**
 * The fleet's one timer: hands out `perMs` turns per millisecond round-robin over `slots` devices, in batches at each
 * wake-up. Behind its schedule (the process is busy), it works through what is due in batches of MAX_BATCH with
 * I/O in between (acks must still be read) instead of skipping turns.
 */
export class TurnSchedule {
  private t0 = 0;
  private endAt = Infinity;
  private issued = 0;
  private cursor = 0;
  private running = false;
  /** Turns due at the last wake-up that were not handed out yet. */
  backlog = 0;
  private timeout: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;

  constructor(
    private readonly slots: number,
    private readonly perMs: number,
    private readonly turn: (slot: number) => void,
    /** Called once when the time set by endIn() has come. */
    private readonly ended: () => void,
  ) {}

  start(t0: number): void {
    this.t0 = t0;
    this.running = true;
    this.wake();
  }

  /** Ends the schedule `ms` from now. */
  endIn(ms: number): void {
    this.endAt = performance.now() + ms;
  }

  stop(): void {
    this.running = false;
    if (this.timeout) clearTimeout(this.timeout);
    if (this.immediate) clearImmediate(this.immediate);
    this.timeout = this.immediate = null;
  }

  private wake = (): void => {
    this.timeout = this.immediate = null;
    const now = performance.now();
    if (now >= this.endAt) {
      this.stop();
      this.ended();
      return;
    }
    const due = Math.floor((now - this.t0) * this.perMs);
    let budget = MAX_BATCH;
    // `running` turns false inside a turn when the last device reaches its count
    while (this.issued < due && budget-- > 0 && this.running) {
      this.turn(this.cursor);
      if (++this.cursor === this.slots) this.cursor = 0;
      this.issued++;
    }
    if (!this.running) return;
    this.backlog = due - this.issued;
    if (this.issued < due) this.immediate = setImmediate(this.wake);
    else this.timeout = setTimeout(this.wake, TICK_MS);
  };
}
