import { LATEST_TS, LATEST_VALUE, SLOT, type Device } from '../device/device-record.js';
import { upperBound } from './sorted.js';
import type { DeviceList, DeviceView } from './types.js';

/** What the store answers about one device: latest values by metric, counts, last seen. */
export function deviceView(dev: Device, online: boolean): DeviceView {
  const latest: DeviceView['latest'] = {};
  const m = dev.m;
  dev.shape.names.forEach((name, i) => {
    const o = i * SLOT;
    const value = { value: m[o + LATEST_VALUE], ts: m[o + LATEST_TS] };
    // defineProperty: a metric may be named like an Object.prototype member.
    if (value.ts !== -Infinity)
      Object.defineProperty(latest, name, { value, enumerable: true, writable: true, configurable: true });
  });
  return {
    id: dev.id,
    online,
    lastSeen: dev.lastSeen,
    latest,
    counts: { ...dev.seq.counts },
    resource: dev.resource,
  };
}

export interface Totals {
  devices: number;
  online: number;
  received: number;
  duplicates: number;
  missing: number;
}

/** Sums of the devices' counts, and how many are online as of `now`. */
export function totalsOf(devices: Iterable<Device>, now: number, offlineAfterMs: number): Totals {
  const t = { devices: 0, online: 0, received: 0, duplicates: 0, missing: 0 };
  for (const d of devices) {
    t.devices++;
    if (now - d.lastSeen < offlineAfterMs) t.online++;
    const c = d.seq.counts;
    t.received += c.received;
    t.duplicates += c.duplicates;
    t.missing += c.missing;
  }
  return t;
}

/**
 * One page of devices in id order after `cursor`, filtered by online and by `match` (a case-insensitive part of the
 * id); `next` when more match.
 */
export function listPage(
  ids: readonly string[],
  deviceOf: (id: string) => Device,
  online: (dev: Device) => boolean,
  opts: { online?: boolean; limit: number; cursor?: string; match?: string; tenant?: string },
): DeviceList {
  const match = opts.match ? opts.match.toLowerCase() : '';
  let i = opts.cursor === undefined ? 0 : upperBound(ids, opts.cursor);
  const out: DeviceList['devices'] = [];
  let more = false;
  for (; i < ids.length; i++) {
    if (match !== '' && !ids[i].toLowerCase().includes(match)) continue;
    const dev = deviceOf(ids[i]);
    if (opts.tenant !== undefined && dev.tenant !== opts.tenant) continue;
    const on = online(dev);
    if (opts.online !== undefined && on !== opts.online) continue;
    if (out.length === opts.limit) {
      more = true;
      break;
    }
    out.push({ id: dev.id, online: on, lastSeen: dev.lastSeen });
  }
  return { devices: out, next: more && out.length > 0 ? out[out.length - 1].id : null };
}
