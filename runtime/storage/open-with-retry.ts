import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Waits between attempts to open storage that failed to open: first, then doubling up to the last. */
export const OPEN_RETRY_INITIAL_MS = 1000;
export const OPEN_RETRY_MAX_MS = 30_000;

export interface OpenRetryHooks {
  /** Each failed attempt, with a sentence for the log (the error, the free space where the store lives). */
  onFailure(err: Error, detail: string, retryInMs: number): void;
  /** True once the process is stopping: no further attempt is made. */
  stopped(): boolean;
}

/**
 * Opens a store (LevelDB) and keeps trying when it cannot be opened — on a nearly full disk LevelDB cannot even
 * write the log it opens with — instead of exiting, so the process stays up, says why on every attempt (log and
 * metrics), answers /readyz with the reason, and comes back by itself once space is freed. Rejects only when the
 * process stops first.
 */
export async function openWithRetry<T>(dir: string, open: () => Promise<T>, hooks: OpenRetryHooks): Promise<T> {
  let wait = OPEN_RETRY_INITIAL_MS;
  for (;;) {
    try {
      return await open();
    } catch (e) {
      const err = e as Error;
      if (hooks.stopped()) throw err;
      hooks.onFailure(err, `cannot open ${dir}: ${err.message}${await freeSpace(dir)}`, wait);
    }
    await new Promise((r) => setTimeout(r, wait));
    if (hooks.stopped()) throw new Error(`stopped while waiting to open ${dir}`);
    wait = Math.min(OPEN_RETRY_MAX_MS, wait * 2);
  }
}

/** "; 12.3 MiB free on its filesystem" (or on the nearest existing parent), or '' when that cannot be read. */
async function freeSpace(dir: string): Promise<string> {
  for (let d = dir; ; d = dirname(d)) {
    try {
      const s = await statfs(d);
      const free = s.bavail * s.bsize;
      return `; ${(free / 1048576).toFixed(1)} MiB free on its filesystem${free < 64 * 1048576 ? ' (nearly full: free space, then it opens by itself)' : ''}`;
    } catch {
      if (dirname(d) === d) return '';
    }
  }
}
