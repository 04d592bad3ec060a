import { OtlpEdgeError } from '../../protocol/errors.js';
import { AggregatorErrorCodes } from '../errors.js';
import { ClassicLevel } from 'classic-level';
import { mkdirSync } from 'node:fs';

/** The node's state database (layout: store.ts). */
export type Db = ClassicLevel<string, Uint8Array>;

/** The layout version this node reads and writes (`meta:format`). */
export const FORMAT = '2';
const FORMAT_KEY = 'meta:format';

/**
 * Opens (creating) the state database and checks its layout version; a new database is stamped with FORMAT. A
 * larger write buffer than LevelDB's 4 MiB: device records are rewritten many times a minute, and each memtable
 * flush carries every version of them into level 0.
 */
export async function openStateDb(dir: string): Promise<Db> {
  mkdirSync(dir, { recursive: true });
  const db: Db = new ClassicLevel<string, Uint8Array>(dir, {
    keyEncoding: 'utf8',
    valueEncoding: 'view',
    writeBufferSize: 32 << 20,
  });
  await db.open();
  const format = (await db.get(FORMAT_KEY, { valueEncoding: 'utf8' } as never)) as unknown as string | undefined;
  if (format !== undefined && format !== FORMAT) {
    await db.close();
    throw new OtlpEdgeError(
      AggregatorErrorCodes.STATE_FORMAT,
      `device state at ${dir} has format ${format}; this node reads format ${FORMAT} (move the directory aside to start afresh)`,
    );
  }
  if (format === undefined) await db.put(FORMAT_KEY, FORMAT as never, { valueEncoding: 'utf8' } as never);
  return db;
}
