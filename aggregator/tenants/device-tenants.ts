import type { Device } from '../device/device-record.js';
import type { ExportItem } from '../export/queue.js';
import type { DeviceData } from '../device/types.js';
import { joinEntries, resourceEntries } from '../../protocol/otlp/split.js';

/** Why a device's data was not applied: the device is another tenant's, or its tenant has its quota of devices. */
export type DeviceRefusal = 'other_tenant' | 'devices';

/**
 * Which tenant's data a node's devices take. A device belongs to the tenant its stored Resource names (stamped at
 * ingest from the sender's token): data of any other tenant — or of a sender in no tenant — is not applied to it,
 * so one tenant cannot write into another's devices. A device in no tenant is taken by the first tenant that sends
 * for it. With a device quota, a tenant that holds its limit of devices on this node gets no new ones.
 */
export class DeviceTenants {
  /** Devices per tenant on this node; built when a quota first needs it, kept up to date after. */
  private counts: Map<string, number> | null = null;

  constructor(
    private readonly devices: () => Iterable<Device>,
    /** A tenant's device limit on this node (0 = none); absent = no device quotas. */
    private readonly limitOf?: (tenant: string) => number,
    /** Told of each device's data refused (counted and logged by the node). */
    private readonly onRefused?: (reason: DeviceRefusal, tenant: string, device: string, points: number) => void,
  ) {}

  /** Whether `d`'s data may not be applied to `dev` (undefined: new here); a refusal is told to onRefused. */
  refuses(dev: Device | undefined, d: DeviceData): boolean {
    const tenant = d.tenant ?? '';
    const reason = this.refusal(dev, tenant);
    if (reason === null) return false;
    this.onRefused?.(reason, tenant, d.deviceId, d.metric.length);
    return true;
  }

  /** Why data of `tenant` may not be applied to `dev` (undefined: a device new to this node), or null. */
  refusal(dev: Device | undefined, tenant: string): DeviceRefusal | null {
    if (dev !== undefined && dev.tenant !== '' && dev.tenant !== tenant) return 'other_tenant';
    if (tenant === '' || this.limitOf === undefined || dev?.tenant === tenant) return null;
    const limit = this.limitOf(tenant);
    return limit > 0 && this.count(tenant) >= limit ? 'devices' : null;
  }

  /** A device's tenant went from `was` (undefined: the device is new) to `now`. */
  moved(was: string | undefined, now: string): void {
    const c = this.counts;
    if (c === null || was === now) return;
    if (was !== undefined) c.set(was, (c.get(was) ?? 1) - 1);
    c.set(now, (c.get(now) ?? 0) + 1);
  }

  /** Devices came or went other than through moved() (a reload, a hand-off, a deletion): count again when asked. */
  reset(): void {
    this.counts = null;
  }

  count(tenant: string): number {
    if (this.counts === null) {
      this.counts = new Map();
      for (const d of this.devices()) this.counts.set(d.tenant, (this.counts.get(d.tenant) ?? 0) + 1);
    }
    return this.counts.get(tenant) ?? 0;
  }
}

/**
 * A batch's OTLP without the resources of `refused` devices (their data was not applied: it is not exported,
 * streamed or kept as events either); undefined when nothing is left.
 */
export function withoutDevices(item: ExportItem, refused: ReadonlySet<string>): ExportItem | undefined {
  const entries = resourceEntries(item.signal, item.otlp);
  const kept = entries.filter((e) => !refused.has(e.deviceId));
  if (kept.length === entries.length) return item;
  if (kept.length === 0) return undefined;
  const points = item.points < 0 ? -1 : kept.reduce((n, e) => n + e.items, 0);
  return { signal: item.signal, otlp: joinEntries(item.otlp, kept), points };
}
