import type { ClassicLevel } from 'classic-level';
import type { Group } from './group.js';
import { eventMessages, type EventMessage } from '../stream/messages.js';

/**
 * A device's recent events (log records) on its owner: `e:<device>\0<arrival ms, 12 hex><counter, 4 hex>` → the
 * event as JSON `{ "ts", "severity", "body", "attributes" }`, put in the same write as the batch that brought it, so
 * an acknowledged event is stored. Newest first by key order reversed; at most KEEP per device once trimmed (a device
 * is trimmed when it has written more than TRIM_AFTER since its last trim).
 */

type Db = ClassicLevel<string, Uint8Array>;

/** Events kept per device, and how many more a device may write before it is trimmed back to KEEP. */
export const KEEP = 100;
const TRIM_AFTER = 50;
/** Longest body text kept; longer is cut, with "…". */
const MAX_BODY_CHARS = 4096;
/** Bytes of one stored event at most (attributes beyond it are left out). */
const MAX_EVENT_BYTES = 8192;

export function eventRange(device: string): { gte: string; lt: string } {
  return { gte: `e:${device}\u0000`, lt: `e:${device}\u0001` };
}

export interface StoredEvent {
  ts: string;
  severity: string;
  body: unknown;
  attributes: Record<string, unknown>;
}

export class EventLog {
  /** Events written per device since its last trim (a device not in the map: none since open). */
  private readonly sinceTrim = new Map<string, number>();
  private counter = 0;
  private trimming: Promise<void> = Promise.resolve();

  /** A logs request's records → puts of the group, per device `accepts` (devices the store applied). */
  add(g: Group, otlp: Uint8Array, accepts: (device: string) => boolean, now: number): void {
    let events: EventMessage[];
    try {
      events = eventMessages(otlp, accepts, KEEP);
    } catch {
      return; // the request was read before it got here; a record that cannot be decoded as a whole is not kept
    }
    const stamp = Math.floor(now).toString(16).padStart(12, '0');
    for (const e of events) {
      const body =
        typeof e.body === 'string' && e.body.length > MAX_BODY_CHARS ? `${e.body.slice(0, MAX_BODY_CHARS)}…` : e.body;
      let json = JSON.stringify({ ts: e.ts, severity: e.severity, body, attributes: e.attributes });
      if (json.length > MAX_EVENT_BYTES)
        json = JSON.stringify({ ts: e.ts, severity: e.severity, body: String(body).slice(0, 1024), attributes: {} });
      this.counter = (this.counter + 1) & 0xffff;
      g.puts.set(`e:${e.device}\u0000${stamp}${this.counter.toString(16).padStart(4, '0')}`, Buffer.from(json));
      this.sinceTrim.set(e.device, (this.sinceTrim.get(e.device) ?? 0) + 1);
    }
  }

  /**
   * After a write: devices that wrote more than TRIM_AFTER events since their last trim lose those beyond the newest
   * KEEP, in a later write of `commit`.
   */
  trimDue(db: () => Db, commit: { pending: Group; barrier(): Promise<void> }): void {
    const due: string[] = [];
    for (const [device, n] of this.sinceTrim) if (n > TRIM_AFTER) due.push(device);
    if (due.length === 0) return;
    void this.trim(db, due, (keys) => {
      for (const k of keys) commit.pending.deletes.add(k);
      return commit.barrier();
    });
  }

  /** Deletes a device's events beyond the newest KEEP; one trim at a time. */
  private trim(db: () => Db, devices: string[], remove: (keys: string[]) => Promise<void>): Promise<void> {
    for (const d of devices) this.sinceTrim.set(d, 0);
    this.trimming = this.trimming.then(async () => {
      for (const device of devices) {
        const old: string[] = [];
        let i = 0;
        for await (const key of db().keys({ ...eventRange(device), reverse: true })) if (i++ >= KEEP) old.push(key);
        if (old.length > 0) await remove(old);
      }
    });
    return this.trimming.catch(() => undefined);
  }

  forget(device: string): void {
    this.sinceTrim.delete(device);
  }
}

/** A device's newest `limit` events, newest first. */
export async function readEvents(db: Db, device: string, limit: number): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  for await (const value of db.values({ ...eventRange(device), reverse: true, limit }))
    out.push(JSON.parse(Buffer.from(value).toString('utf8')) as StoredEvent);
  return out;
}
