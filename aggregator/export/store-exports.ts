import type { Device } from '../device/device-record.js';
import type { Committer } from '../state/commit.js';
import type { Db } from '../state/db.js';
import type { Group } from '../state/group.js';
import type { ExportItem, ExportQueue, ExportQueues, QueueEntry } from './queue.js';
import type { RollupExport } from './rollup.js';

/**
 * The export queues' access to the node's state store: every change goes through the store's group commit (so it
 * is ordered with the data it concerns), and waits out a reload after a failed write like any other change.
 */
export class StoreExports {
  constructor(
    private readonly s: {
      commit: Committer;
      db: () => Db;
      ready: () => Promise<void>;
      devices: () => Iterable<Device>;
      queues: ExportQueues | undefined;
      rollups: RollupExport | undefined;
    },
  ) {}

  /**
   * Queues data that is not device state (resources without device.id, traces) for export; resolves once durable
   * with the number of exporters that took it (0 = no exporter takes this signal: nothing was stored).
   */
  async enqueue(item: ExportItem): Promise<number> {
    await this.s.ready();
    const g = this.s.commit.pending;
    const n = this.s.queues?.enqueue(g, item) ?? 0;
    if (n === 0) return 0;
    this.s.commit.schedule();
    await g.done();
    return n;
  }

  /** Queues quiet devices' closed minutes for rollup exporters (RollupExport.sweep); resolves once durable. */
  async sweepRollups(nowMs: number): Promise<number> {
    await this.s.ready();
    const r = this.s.rollups;
    if (r === undefined) return 0;
    const g = this.s.commit.pending;
    const n = r.sweep(g, this.s.devices(), nowMs);
    if (n === 0) return 0;
    this.s.commit.schedule();
    await g.done();
    return n;
  }

  /** Names of the export queues LevelDB holds entries of (configured or not): one seek per queue. */
  async storedQueues(): Promise<string[]> {
    await this.s.ready();
    const names: string[] = [];
    const it = this.s.db().keys({ gte: 'x:', lt: 'x;' });
    try {
      for (let key = await it.next(); key !== undefined; key = await it.next()) {
        const name = key.slice(2, key.indexOf('\u0000'));
        names.push(name);
        it.seek(`x:${name}\u0001`);
      }
    } finally {
      await it.close();
    }
    return names;
  }

  /** Changes an export queue in the next write (entries sent or dropped); resolves once durable. */
  async change(change: (g: Group) => void): Promise<void> {
    await this.s.ready();
    const c = this.s.commit;
    const g = c.pending;
    change(g);
    c.schedule();
    await (g.empty ? c.barrier() : g.done());
  }

  /** The requests of queue entries, inflated or as stored (null for one no longer stored). */
  async requests(q: ExportQueue, entries: readonly QueueEntry[], stored = false): Promise<(Uint8Array | null)[]> {
    await this.s.ready();
    return q.requests(this.s.db(), entries, stored);
  }
}
