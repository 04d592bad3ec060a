import { mkdirSync } from 'node:fs';
import { ClassicLevel } from 'classic-level';
import type { BufferOptions } from './buffer-types.js';

/** Opens (creating) the buffer's LevelDB with the options it is tuned for. */
export async function openBufferDb(opts: Required<BufferOptions>): Promise<ClassicLevel<string, Uint8Array>> {
  mkdirSync(opts.dir, { recursive: true });
  // Stored batches are zstd already: LevelDB's own compression would spend CPU for nothing. A write buffer much
  // smaller than the cap keeps the log and memtable from holding more than the cap allows on small gateways.
  const db = new ClassicLevel<string, Uint8Array>(opts.dir, {
    keyEncoding: 'utf8',
    valueEncoding: 'view',
    compression: false,
    writeBufferSize: Math.max(64 * 1024, Math.min(4 * 1024 * 1024, Math.floor(opts.maxBytes / 16))),
  });
  await db.open();
  return db;
}
