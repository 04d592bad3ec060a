/**
 * What the agent remembers of each Sparkplug edge node, durably (in the buffer's LevelDB, beside the batches), so
 * that DATA after an agent restart is still read: its bdSeq and birth, its aliases (alias → device, name, datatype),
 * its devices' births, and how far its `seq` went (unwrapped: the 0–255 counter continued past each wrap and
 * rebirth, so it can serve as the edge node's loss-accounting `seq`).
 */
import type { SideStore } from '../buffer/side-state.js';

export interface MetricDef {
  /** '' for the edge node's own metrics */
  device: string;
  name: string;
  datatype: number;
}

export class EdgeNode {
  born = false;
  /** bdSeq of the current birth; -1 when none was seen */
  bdSeq = -1;
  /** unwrapped seq of the latest message; -1 before any */
  last = -1;
  /** its 0–255 value */
  last8 = 0;
  readonly aliases = new Map<number, MetricDef>();
  /** device → born, and the datatype of each metric name its birth gave */
  readonly devices = new Map<string, { born: boolean; types: Map<string, number> }>();
  /** the edge node's own metric names → datatype, from NBIRTH */
  readonly types = new Map<string, number>();
  /** Not kept: false after a restart until the first message sets where seq is (no gap is judged across it). */
  synced = false;
  /** Not kept: unwrapped seqs skipped over → when they count as lost. */
  readonly missing = new Map<number, number>();
  /** Not kept: when a rebirth was last asked for. */
  rebirthAskedAt = 0;
  /** Not kept: `last` as last written. */
  savedLast = -1;
  /** Metric names and aliases its births defined (counted against MAX_DEFINITIONS_PER_NODE). */
  definitions = 0;

  constructor(
    readonly group: string,
    readonly edgeNode: string,
  ) {}

  get key(): string {
    return `${this.group}/${this.edgeNode}`;
  }

  /** Forgets the births (NBIRTH starts over: aliases and devices are defined anew). */
  rebirth(bdSeq: number): void {
    this.born = true;
    this.bdSeq = bdSeq;
    this.aliases.clear();
    this.devices.clear();
    this.types.clear();
    this.missing.clear();
    this.definitions = 0;
  }

  toJSON(): unknown {
    return {
      born: this.born,
      bdSeq: this.bdSeq,
      last: this.last,
      last8: this.last8,
      types: [...this.types],
      aliases: [...this.aliases].map(([a, d]) => [a, d.device, d.name, d.datatype]),
      devices: [...this.devices].map(([d, s]) => [d, s.born, [...s.types]]),
    };
  }

  static from(group: string, edgeNode: string, json: unknown): EdgeNode {
    const j = json as {
      born: boolean;
      bdSeq: number;
      last: number;
      last8: number;
      types: [string, number][];
      aliases: [number, string, string, number][];
      devices: [string, boolean, [string, number][]][];
    };
    const n = new EdgeNode(group, edgeNode);
    n.born = j.born;
    n.bdSeq = j.bdSeq;
    n.last = n.savedLast = j.last;
    n.last8 = j.last8;
    for (const [name, t] of j.types) n.types.set(name, t);
    for (const [a, device, name, datatype] of j.aliases) n.aliases.set(a, { device, name, datatype });
    for (const [d, born, types] of j.devices) n.devices.set(d, { born, types: new Map(types) });
    n.definitions = n.types.size + n.aliases.size;
    for (const d of n.devices.values()) n.definitions += d.types.size;
    return n;
  }
}

const PREFIX = 'sp:';
/** Edge nodes the agent keeps state for at most; births of more are refused (a hostile sender's many groups). */
export const MAX_EDGE_NODES = 100_000;
/** Devices one edge node may define at most, and metric names and aliases its births may define (more are not kept). */
export const MAX_DEVICES_PER_NODE = 10_000;
export const MAX_DEFINITIONS_PER_NODE = 100_000;
/** Messages after which an edge node's seq progress is written even without a birth or death. */
const SAVE_EVERY = 64;

/**
 * The edge nodes, loaded at start and written back in one LevelDB batch shortly after they change: births and
 * deaths at once, seq progress every 64 messages (so after a crash the kept `last` is less than half a wrap behind
 * and the next seq still reads forward).
 */
export class EdgeNodes {
  private readonly dirty = new Set<EdgeNode>();
  private flushing: Promise<void> | null = null;

  private constructor(
    private readonly store: SideStore,
    private readonly nodes: Map<string, EdgeNode>,
    private readonly onError: (err: Error) => void,
  ) {}

  static async load(store: SideStore, onError: (err: Error) => void): Promise<EdgeNodes> {
    const nodes = new Map<string, EdgeNode>();
    for (const [k, v] of await store.read(PREFIX)) {
      const key = k.slice(PREFIX.length);
      const slash = key.indexOf('/');
      try {
        nodes.set(key, EdgeNode.from(key.slice(0, slash), key.slice(slash + 1), JSON.parse(Buffer.from(v).toString())));
      } catch (err) {
        onError(new Error(`Sparkplug state of ${key} is unreadable and starts over: ${(err as Error).message}`));
      }
    }
    return new EdgeNodes(store, nodes, onError);
  }

  get size(): number {
    return this.nodes.size;
  }

  all(): IterableIterator<EdgeNode> {
    return this.nodes.values();
  }

  get(group: string, edgeNode: string): EdgeNode | undefined {
    return this.nodes.get(`${group}/${edgeNode}`);
  }

  /** The edge node, created when new; null when MAX_EDGE_NODES are kept already. */
  getOrCreate(group: string, edgeNode: string): EdgeNode | null {
    const key = `${group}/${edgeNode}`;
    let n = this.nodes.get(key);
    if (n === undefined) {
      if (this.nodes.size >= MAX_EDGE_NODES) return null;
      this.nodes.set(key, (n = new EdgeNode(group, edgeNode)));
    }
    return n;
  }

  /** Marks `n` to be written: now when `now` (a birth or death), else once its seq moved SAVE_EVERY on. */
  changed(n: EdgeNode, now: boolean): void {
    if (!now && n.last - n.savedLast < SAVE_EVERY) return;
    this.dirty.add(n);
    this.flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.write());
  }

  /** Writes what changed; resolves once it is on disk. */
  async flush(): Promise<void> {
    while (this.flushing !== null) await this.flushing;
  }

  private async write(): Promise<void> {
    const batch = [...this.dirty];
    this.dirty.clear();
    for (const n of batch) n.savedLast = n.last;
    try {
      await this.store.write(batch.map((n) => [PREFIX + n.key, Buffer.from(JSON.stringify(n))]));
    } catch (err) {
      this.onError(err as Error);
    }
    this.flushing = this.dirty.size > 0 ? this.write() : null;
  }
}
