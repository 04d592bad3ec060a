import { SIDE_PREFIX } from './keys.js';

/**
 * Side state a receiver keeps beside the batches in the buffer's LevelDB (`s:<name>` keys, JSON or bytes): not counted
 * in the cap, not sent anywhere. The Sparkplug B ingest keeps its edge nodes here (sparkplug-state.ts).
 */
export interface SideStore {
  /** Every entry whose name starts with `prefix`, as [name, value]. */
  read(prefix: string): Promise<[string, Uint8Array][]>;
  /** Writes (or, for null, deletes) entries in one fsync'd batch. */
  write(entries: readonly [string, Uint8Array | null][]): Promise<void>;
}

type Op = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string };

export function sideStore(
  iterate: (range: { gte: string; lt: string }) => AsyncIterable<[string, Uint8Array]>,
  batch: (ops: Op[]) => Promise<void>,
): SideStore {
  return {
    async read(prefix) {
      const out: [string, Uint8Array][] = [];
      const gte = SIDE_PREFIX + prefix;
      for await (const [k, v] of iterate({ gte, lt: gte + '\uffff' })) out.push([k.slice(SIDE_PREFIX.length), v]);
      return out;
    },
    write(entries) {
      return batch(
        entries.map(([k, v]) =>
          v === null ? { type: 'del', key: SIDE_PREFIX + k } : { type: 'put', key: SIDE_PREFIX + k, value: v },
        ),
      );
    },
  };
}
