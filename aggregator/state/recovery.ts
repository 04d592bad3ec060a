import { openWithRetry } from '../../runtime/storage/open-with-retry.js';
import { openStateDb, type Db } from './db.js';
import type { Committer } from './commit.js';

/** How long a failed write keeps /readyz at 503 when no write succeeds after it. */
const UNREADY_AFTER_FAILURE_MS = 30_000;

export interface RecoveryTarget {
  readonly commit: Committer;
  readonly dir: string;
  closed(): boolean;
  /** Closes the database in use (its log may hold a torn record). */
  closeDb(): Promise<void>;
  /** Takes the reopened database and reloads memory from it. */
  reload(db: Db): Promise<void>;
  onReopenFailure?: (err: Error, detail: string) => void;
}

/**
 * What the state store does when a read or write fails: every caller waiting is answered with the error (the
 * agents retry), the database is reopened (retrying while, say, the disk is full) and memory reloaded from it before
 * anything else is applied; if that fails too, the store is unusable. It also tells /readyz why the store cannot
 * take data.
 */
export class StoreRecovery {
  /** Reads or writes that failed (each answered its callers with the error and reloaded memory). */
  failures = 0;
  /** The reload under way, or null. */
  recovering: Promise<void> | null = null;
  /** Set when a reload failed: the store refuses everything. */
  broken: Error | null = null;
  /** The last failure and the number of successful writes at that time (a later write clears it). */
  private lastFailure: { message: string; writes: number; at: number } | null = null;

  constructor(private readonly t: RecoveryTarget) {}

  /** Waits out a reload after a failure; throws when the store is closed or unusable. */
  async ready(): Promise<void> {
    for (;;) {
      if (this.t.closed()) throw new Error('device state store is closed');
      if (this.broken) throw this.broken;
      if (this.recovering === null) return;
      await this.recovering;
    }
  }

  /**
   * Why the store cannot take data now (for /readyz), or null: unusable, reloading after a failed write, or its last
   * write failed and none has succeeded since (a full disk, a read-only volume).
   */
  unhealthy(): string | null {
    if (this.t.closed()) return 'state store closed';
    if (this.broken) return this.broken.message;
    const f = this.lastFailure;
    if (this.recovering) return `reloading state after a failed write${f ? ` (${f.message})` : ''}`;
    // Reported for a while only: an unready node gets no new data, so no write could ever clear it.
    if (f !== null && this.t.commit.writes === f.writes && Date.now() - f.at < UNREADY_AFTER_FAILURE_MS)
      return `the last state write failed (${f.message}); none has succeeded since`;
    return null;
  }

  fail(err: Error): void {
    const commit = this.t.commit;
    this.lastFailure = { message: err.message, writes: commit.writes, at: Date.now() };
    if (this.recovering !== null) return;
    this.failures++;
    commit.reset(err);
    this.recovering = (async () => {
      await commit.quiet();
      // LevelDB keeps appending to its log after a failed append, and its next open drops the torn record with
      // whatever follows it in the same block: writes acknowledged after the failure would be lost. Reopening
      // ends that log (recovery starts a new one) before anything else is written.
      await this.t.closeDb().catch(() => undefined);
      // On a full disk the open itself fails (it writes a new log): keep trying, the store says why meanwhile.
      const db = await openWithRetry(this.t.dir, () => openStateDb(this.t.dir), {
        stopped: () => this.t.closed(),
        onFailure: (e, detail) => {
          this.lastFailure = { message: detail, writes: commit.writes, at: Date.now() };
          this.t.onReopenFailure?.(e, detail);
        },
      });
      commit.db = db;
      await this.t.reload(db);
    })().then(
      () => {
        this.recovering = null;
      },
      (e: Error) => {
        this.broken = new Error(
          `device state store is unusable: a write failed (${err.message}) and reloading failed (${e.message})`,
        );
        this.recovering = null;
      },
    );
  }
}
