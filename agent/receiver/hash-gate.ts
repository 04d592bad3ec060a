import { AuthError, AuthErrorCodes, ConnackCodes } from './auth-errors.js';

/**
 * At most `limit` tasks at once and `maxWaiting` waiting; tasks marked first go ahead of the others. A task that
 * finds the waiting room full is refused at once (AuthError BUSY) rather than queued behind a flood.
 */
export class Gate {
  private active = 0;
  private readonly first: Array<() => void> = [];
  private readonly rest: Array<() => void> = [];
  constructor(
    private readonly limit: number,
    private readonly maxWaiting: number,
  ) {}

  async run<T>(task: () => Promise<T>, first: boolean): Promise<T> {
    if (this.active < this.limit) this.active++;
    else {
      if (this.first.length + this.rest.length >= this.maxWaiting) {
        throw new AuthError(
          AuthErrorCodes.BUSY,
          `${this.maxWaiting} password checks are already waiting; try again later`,
          { returnCode: ConnackCodes.SERVER_UNAVAILABLE },
        );
      }
      // The finishing task hands over its slot.
      await new Promise<void>((resolve) => (first ? this.first : this.rest).push(resolve));
    }
    try {
      return await task();
    } finally {
      const next = this.first.shift() ?? this.rest.shift();
      if (next !== undefined) next();
      else this.active--;
    }
  }
}
