import { RingError, RingErrorCodes } from '../errors.js';
import { fmix32, murmur3 } from './hash.js';

/**
 * The consistent-hash ring that shards devices over aggregator nodes (aggregator/README.md "Cluster"). Pure: the owner
 * of a device is a function of (member set, vnodes, device id) only, so an agent and every node compute the same one.
 *
 * The cross-process contract (changing any line of it moves devices between processes; bump RING_FORMAT if you must):
 *
 *   vnode position   murmur3(`${member.id}#${i}`) for i in 0 … vnodes-1   (UTF-8 bytes, seed 0; see hash.ts)
 *   device probes    p0 = murmur3(deviceId); pk = fmix32((p0 + k·0x9e3779b9) mod 2^32) for k in 1 … PROBES-1
 *   candidate        for each probe, the first vnode clockwise from it (position ≥ probe, wrapping past 2^32-1 to 0)
 *   owner            the candidate with the smallest (distance from its probe, probe k, member id) — a total order
 *
 * Why several probes (multi-probe consistent hashing, Appleton & O'Reilly 2015): with one probe a member's share is
 * the sum of the arcs before its vnodes, and 128 random arcs give a relative spread of ~1/√128 ≈ 9%. Measured on
 * 2,000 random 10-member sets (names like agg-N, random words, ip:port, Kubernetes DNS) with 100,000 device ids,
 * the busiest member held more than 1.15× the mean in 39% of sets with one probe (worst 1.34×). Spreading each
 * member's vnodes more evenly cannot fix this while keeping positions a function of the member's own id (needed so
 * no device moves between members that stay): the arc before a vnode is set by the other members' vnodes. With
 * probes, a long arc wins less than its length (another probe usually lands closer to a vnode), which cuts the spread
 * to ~3%: 5 probes gave a worst of 1.12× (95th percentile 1.075×) over the same 2,000 sets; 4 probes gave 1.13×.
 * Each probe costs one table lookup and a short scan (the bucket index below), so 5 probes still run at several
 * million lookups/s.
 *
 * Minimal movement: the owner is the minimum of a fixed total order over (probe, vnode) candidates, and a member's
 * vnodes depend only on its id. Adding a member only adds candidates, so a device either keeps its owner or moves to
 * the new member; removing one only removes its candidates, so only its devices move. No device ever moves between
 * two members that both stayed, and each join or leave moves about the joiner's (leaver's) fair share, 1/N.
 */

export interface RingMember {
  readonly id: string;
  /** Where the member's peer/uplink service listens (`host:port`); part of the version, not of the placement. */
  readonly address: string;
}

/**
 * A member address: `host:port` (a name, an IPv4 address or a bracketed IPv6 address), at most 255 bytes — agents
 * store it with each batch they route (a 1-byte length), and nodes compare it in ring versions. Checked where an
 * address enters: the aggregator's cluster config, and the ring an agent learns.
 */
export const MAX_ADDRESS_BYTES = 255;
const ADDRESS = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):\d{1,5}$/;

export function isValidAddress(address: string): boolean {
  if (typeof address !== 'string' || Buffer.byteLength(address) > MAX_ADDRESS_BYTES || !ADDRESS.test(address))
    return false;
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  return port >= 1 && port <= 65535;
}

export const DEFAULT_VNODES = 128;
/** Upper bound on vnodes per member: owner indices and positions are packed into 16 + 32 bits of a float64. */
export const MAX_VNODES = 65_535;
/** At most this many members (owner indices are Uint16). */
export const MAX_MEMBERS = 65_535;
/** Probe hashes per lookup (see above); part of the cross-process contract. */
export const PROBES = 5;
/** Golden-ratio step between probe seeds: consecutive probes start far apart before fmix32 scrambles them. */
const PROBE_STEP = 0x9e3779b9;
/** Names the placement rule inside the version, so processes running different rules never look alike. */
export const RING_FORMAT = 'otlp-edge-ring/1';
/** share() evaluates the owner of this many evenly spaced device hashes: ~15 ms, error under ±0.5% of the space. */
const SHARE_GRID = 1 << 16;
const TWO_32 = 4294967296;

function byId(a: RingMember, b: RingMember): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export class HashRing {
  /** Members sorted by id: indices (ownerIndex) and tie-breaks are the same whatever order the caller used. */
  readonly members: readonly RingMember[];
  readonly vnodes: number;
  /**
   * The membership version: murmur3 of RING_FORMAT, vnodes and the sorted (id, address) pairs. Two processes with
   * the same membership agree on it; any change of a member, an address or vnodes changes it (barring a 1 in 2^32
   * collision). It is an identity, not a counter: compare versions for equality, never for "newer". Never 0, which
   * the wire format uses for "no ring".
   */
  readonly version: number;

  /** Vnode positions, ascending; for equal positions, the lower member index first. */
  private readonly points: Uint32Array;
  /** owners[j] is the index into `members` of the vnode at points[j]. */
  private readonly owners: Uint16Array;
  /**
   * Bucket index over the top bits of a hash: bucketStart[b] is the first j with points[j] ≥ b·2^shift, so a probe
   * scans about one point instead of binary-searching ~11 levels.
   */
  private readonly bucketStart: Uint32Array;
  private readonly shift: number;
  private shares: Float64Array | undefined;

  constructor(members: readonly RingMember[], vnodes: number = DEFAULT_VNODES) {
    if (!Number.isInteger(vnodes) || vnodes < 1 || vnodes > MAX_VNODES) {
      throw new RingError(
        RingErrorCodes.BAD_MEMBER,
        `vnodes must be an integer from 1 to ${MAX_VNODES}, got ${typeof vnodes === 'number' ? String(vnodes) : JSON.stringify(vnodes)}`,
      );
    }
    if (members.length > MAX_MEMBERS) {
      throw new RingError(
        RingErrorCodes.BAD_MEMBER,
        `a ring holds at most ${MAX_MEMBERS} members, got ${members.length}`,
      );
    }
    const seen = new Set<string>();
    for (const m of members) {
      if (typeof m?.id !== 'string' || m.id === '') {
        throw new RingError(
          RingErrorCodes.BAD_MEMBER,
          `every ring member needs a non-empty id, got ${JSON.stringify(m?.id)} (address ${JSON.stringify(m?.address)})`,
        );
      }
      if (typeof m.address !== 'string') {
        throw new RingError(
          RingErrorCodes.BAD_MEMBER,
          `ring member '${m.id}' needs a string address (host:port), got ${JSON.stringify(m.address)}`,
        );
      }
      if (seen.has(m.id))
        throw new RingError(
          RingErrorCodes.BAD_MEMBER,
          `ring member id '${m.id}' is listed twice; member ids must be unique`,
        );
      seen.add(m.id);
    }
    this.members = Object.freeze(members.map((m) => Object.freeze({ id: m.id, address: m.address })).sort(byId));
    this.vnodes = vnodes;
    const v = murmur3(JSON.stringify([RING_FORMAT, vnodes, this.members.map((m) => [m.id, m.address])]));
    this.version = v === 0 ? 1 : v;

    // One numeric sort orders vnodes by position, then by member index (= member id order): position·2^16 + index
    // is exact in a float64 (48 bits).
    const n = this.members.length * vnodes;
    const packed = new Float64Array(n);
    let k = 0;
    for (let idx = 0; idx < this.members.length; idx++) {
      const id = this.members[idx].id;
      for (let i = 0; i < vnodes; i++) packed[k++] = murmur3(`${id}#${i}`) * 65_536 + idx;
    }
    packed.sort();
    this.points = new Uint32Array(n);
    this.owners = new Uint16Array(n);
    for (let j = 0; j < n; j++) {
      const idx = packed[j] % 65_536;
      this.owners[j] = idx;
      this.points[j] = (packed[j] - idx) / 65_536;
    }

    // About two buckets per vnode (at most 2^20, 4 MiB) keeps the scan to ~1 point.
    let bits = 1;
    while (bits < 20 && 2 ** bits < 2 * n) bits++;
    this.shift = 32 - bits;
    const buckets = 2 ** bits;
    this.bucketStart = new Uint32Array(buckets + 1);
    let j = 0;
    for (let b = 0; b <= buckets; b++) {
      const lowest = b * 2 ** this.shift;
      while (j < n && this.points[j] < lowest) j++;
      this.bucketStart[b] = j;
    }
  }

  /** Number of members. */
  get size(): number {
    return this.members.length;
  }

  /** Index into `members` of the owner of `deviceId`. No allocation for ASCII ids. Throws RingError when empty. */
  ownerIndex(deviceId: string): number {
    if (this.points.length === 0) throw emptyRing();
    return this.ownerOfHash(murmur3(deviceId));
  }

  /** The member that owns `deviceId`. Throws RingError(OTLPEDGE_RING_EMPTY) when the ring has no members. */
  owner(deviceId: string): RingMember {
    return this.members[this.ownerIndex(deviceId)];
  }

  /** The owner (member index) of a device whose murmur3 hash is `h0`; the ring must not be empty. */
  private ownerOfHash(h0: number): number {
    const points = this.points;
    const start = this.bucketStart;
    const shift = this.shift;
    const n = points.length;
    let best = TWO_32;
    let bestAt = 0;
    for (let k = 0; k < PROBES; k++) {
      const h = k === 0 ? h0 : fmix32((h0 + Math.imul(k, PROBE_STEP)) >>> 0);
      const b = h >>> shift;
      let j = start[b];
      const end = start[b + 1];
      while (j < end && points[j] < h) j++;
      if (j === n) j = 0; // past the last vnode: wrap to the first
      const d = (points[j] - h) >>> 0; // clockwise distance, modulo 2^32
      // Strictly less: on equal distance the earlier probe wins, and within one position the lower member index
      // came first in `points` — together the fixed total order the movement guarantees rest on.
      if (d < best) {
        best = d;
        bestAt = j;
      }
    }
    return this.owners[bestAt];
  }

  /**
   * The fraction of the device-hash space each member owns, by member id (sums to 1; what /v1/ring shows as
   * `share`). With several probes a share is not a sum of arcs, so it is evaluated on SHARE_GRID evenly spaced
   * hashes, once per ring: deterministic, the same in every process, and within ±0.5% of the hash space of the exact
   * value (largest error measured over 300 members: 0.42%) — plenty for display, not for routing.
   */
  share(): Map<string, number> {
    if (this.shares === undefined) {
      const counts = new Float64Array(this.members.length);
      if (this.points.length > 0) {
        const step = TWO_32 / SHARE_GRID;
        for (let i = 0; i < SHARE_GRID; i++) counts[this.ownerOfHash(i * step + step / 2)]++;
        for (let i = 0; i < counts.length; i++) counts[i] /= SHARE_GRID;
      }
      this.shares = counts;
    }
    const shares = this.shares;
    return new Map(this.members.map((m, i) => [m.id, shares[i]]));
  }

  /** A ring with `m` added, or with its address replaced when a member with that id is already there. */
  withMember(m: RingMember): HashRing {
    return new HashRing([...this.members.filter((x) => x.id !== m.id), m], this.vnodes);
  }

  /** A ring without the member `id` (this ring when there is no such member). */
  withoutMember(id: string): HashRing {
    return this.members.some((x) => x.id === id)
      ? new HashRing(
          this.members.filter((x) => x.id !== id),
          this.vnodes,
        )
      : this;
  }
}

function emptyRing(): RingError {
  return new RingError(
    RingErrorCodes.EMPTY,
    'the ring has no members, so no device has an owner; list the aggregator nodes in cluster.members or name them with cluster.dns, or wait until at least one member is healthy',
  );
}
