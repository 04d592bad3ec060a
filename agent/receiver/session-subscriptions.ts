import { publishPacket } from '../../protocol/mqtt/frames.js';
import type { DeviceSession } from './device-session.js';
import { matches } from '../../protocol/mqtt/frames.js';

/**
 * Who on the lean path subscribed to what, and delivery to them (QoS 0). A device's own errors topic, the usual
 * subscription, has no wildcard: those are found by topic in one lookup, so a publish costs nothing per device; only
 * wildcard filters (anonymous development clients) are matched one by one.
 */
export class SessionSubscriptions {
  /** Sessions by the wildcard-free filters they subscribed to, … */
  private readonly exact = new Map<string, Set<DeviceSession>>();
  /** … and the sessions with a wildcard filter. */
  private readonly wild = new Set<DeviceSession>();

  add(s: DeviceSession, filter: string): void {
    const wildcard = filter.includes('+') || filter.includes('#');
    (s.subs ??= new Map()).set(filter, wildcard ? filter.split('/') : null);
    if (wildcard) this.wild.add(s);
    else {
      let set = this.exact.get(filter);
      if (set === undefined) this.exact.set(filter, (set = new Set()));
      set.add(s);
    }
  }

  remove(s: DeviceSession, filters: Iterable<string>): void {
    for (const f of [...filters]) {
      if (s.subs?.delete(f) !== true) continue;
      const set = this.exact.get(f);
      if (set?.delete(s) && set.size === 0) this.exact.delete(f);
    }
    if (s.subs !== null && ![...s.subs.values()].some((levels) => levels !== null)) this.wild.delete(s);
  }

  /** Delivers one message (QoS 0) to every session subscribed to `topic`, once each. */
  publish(topic: string, payload: Buffer): void {
    const exact = this.exact.get(topic);
    if (exact === undefined && this.wild.size === 0) return;
    let packet: Buffer | null = null;
    if (exact !== undefined) for (const s of exact) s.write((packet ??= publishPacket(topic, payload, 0)));
    if (this.wild.size === 0) return;
    const levels = topic.split('/');
    for (const s of this.wild) {
      if (exact?.has(s)) continue; // delivered above
      for (const filter of s.subs!.values()) {
        if (filter === null || !matches(filter, levels)) continue;
        s.write((packet ??= publishPacket(topic, payload, 0)));
        break;
      }
    }
  }
}
