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

/**
 * One page of devices in id order after `cursor`, filtered by online and by `match` (a case-insensitive part of the
 * id); `next` when more match.
 */
export function listPage(
  ids: readonly string[],
  deviceOf: (id: string) => Device,
  online: (dev: Device) => boolean,
  opts: { online?: boolean; limit: number; cursor?: string; match?: string },
): DeviceList {
  const match = opts.match ? opts.match.toLowerCase() : '';
  let i = opts.cursor === undefined ? 0 : upperBound(ids, opts.cursor);
  const out: DeviceList['devices'] = [];
  let more = false;
  for (; i < ids.length; i++) {
    if (match !== '' && !ids[i].toLowerCase().includes(match)) continue;
    const dev = deviceOf(ids[i]);
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
