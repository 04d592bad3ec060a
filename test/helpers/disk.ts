import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A small tmpfs (default 16 MiB): a real filesystem that fills up. Needs root, as the suites and CI run. */
export function smallDisk(t: { after(fn: () => void): void }, size = '16m'): string {
  const dir = mkdtempSync(join(tmpdir(), 'otlp-edge-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  t.after(() => {
    execFileSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Writes `path` until its filesystem is full. */
export function fill(path: string): void {
  const fd = openSync(path, 'w');
  try {
    // Smaller and smaller writes, so not even the last partly used block is left.
    for (const size of [1 << 20, 64 << 10, 4 << 10, 512, 1]) {
      const chunk = Buffer.alloc(size, 7);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
      }
    }
  } finally {
    closeSync(fd);
  }
}
