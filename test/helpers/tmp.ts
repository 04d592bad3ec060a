import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temp directory, removed when the test ends. */
export function tempDir(t: { after(fn: () => void | Promise<void>): void }, prefix = 'otlp-edge-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Total bytes of the files under `dir` (what the buffer really takes on disk). */
export function diskUsage(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const s = statSync(p);
    total += s.isDirectory() ? diskUsage(p) : s.size;
  }
  return total;
}
