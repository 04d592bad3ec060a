import { matches, publishPacket } from '../../protocol/mqtt/frames.js';
import { publish5 } from '../../protocol/mqtt/v5.js';
import type { DeviceSession } from './device-session.js';

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

  /**
   * Delivers one message (QoS 0) to every session subscribed to `topic`, once each; `from`, the session that
   * published it, is skipped where it subscribed with No Local (MQTT 5) [MQTT-3.8.3-3].
   */
  publish(topic: string, payload: Buffer, from?: DeviceSession): void {
    const exact = this.exact.get(topic);
    if (exact === undefined && this.wild.size === 0) return;
    const packets = new Packets(topic, payload);
    if (exact !== undefined) for (const s of exact) if (s !== from || !s.v5?.noLocal?.has(topic)) packets.sendTo(s);
    if (this.wild.size === 0) return;
    const levels = topic.split('/');
    for (const s of this.wild) {
      if (exact?.has(s) && (s !== from || !s.v5?.noLocal?.has(topic))) continue; // delivered above
      for (const [key, filter] of s.subs!) {
        if (filter === null || !matches(filter, levels)) continue;
        if (s === from && s.v5?.noLocal?.has(key)) continue;
        packets.sendTo(s);
        break;
      }
    }
  }
}

/** One message's PUBLISH, built once per protocol level for all who get it. */
class Packets {
  private v4: Buffer | null = null;
  private v5: Buffer | null = null;

  constructor(
    private readonly topic: string,
    private readonly payload: Buffer,
  ) {}

  sendTo(s: DeviceSession): void {
    if (s.v5 === null) return s.write((this.v4 ??= publishPacket(this.topic, this.payload, 0)));
    const p = (this.v5 ??= publish5(this.topic, this.payload, 0));
    if (p.length <= s.v5.maxPacket) s.write(p); // larger than the client takes: not sent [MQTT-3.1.2-25]
  }
}
