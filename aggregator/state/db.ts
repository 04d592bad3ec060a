import { OtlpEdgeError } from '../../protocol/errors.js';
import { AggregatorErrorCodes } from '../errors.js';
import { ClassicLevel } from 'classic-level';
import { mkdirSync } from 'node:fs';

/**
 * The node's state database (kept by store.ts).
 *
 * LevelDB layout, format 2 (utf8 keys, binary little-endian values):
 *
 *   meta:format                                "2"
 *   s:<device>                                 device record (device-record.ts): last seen, seq tracker, and per
 *                                              metric its latest value and its newest 1-minute bucket (the "head")
 *   r:<device>\0<metric>\0<minute as 12 hex>   an older 1-minute bucket: [min, max, sum, count, last, last ts] × f64
 *   d:<source>                                 applied batch seqs of one agent (dedup.ts): floor + bitmap above it
 *   h:<device>                                 hashes of the state exports merged into the device (mergeDevice),
 *                                              newest last, 8 bytes each: a handoff retried is merged once
 *   x:<exporter>\0<seq>, xm:<exporter>         export queues (export/queue.ts), written with the data they carry
 *
 *        s:dev-7  [ … temp: latest, head 12:04 … ]      ← every device record is loaded at open (~100k devices)
 *        r:dev-7\0temp\0…12:01  …12:02  …12:03          ← read by series(), by a late point, or by prune
 *
 * Format 1 (the first layout, all buckets under r:) is not read. A bucket lives in exactly one place: a metric's
 * newest minute in the device record, older minutes under r:. So the usual batch (points of the current minute)
 * writes one record per device it touched, the dedup record of its source, and at a minute's turn the closed
 * buckets — never whole histories.
 */
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
