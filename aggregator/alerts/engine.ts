import { LATEST_TS, LATEST_VALUE, SLOT, type Device } from '../device/device-record.js';
import { resourceAttributes } from '../../protocol/otlp/plain.js';
import type { AggregatorConfig } from '../config.js';
import {
  compare,
  compileRule,
  MISSING_ALERT,
  OFFLINE_ALERT,
  resourceLabels,
  type Alert,
  type AlertChange,
  type AlertKind,
  type Rule,
} from './alert.js';

export interface AlertEngineDeps {
  /** devices.offline_after. */
  offlineAfterMs: number;
  /** Whether this node owns the device now (alerts are raised by the owner only). */
  owns: (deviceId: string) => boolean;
  /** Alerts that began firing or resolved in one evaluation. */
  onChanges: (changes: AlertChange[]) => void;
  /** An alert not raised because max_active alerts are active. */
  onOverflow?: (alertname: string) => void;
}

const key = (alertname: string, device: string) => `${alertname}\u0000${device}`;

/**
 * Evaluates the alerts of the devices this node holds, level by level (as Prometheus evaluates rules): each pass
 * looks at every device's state as it is now and raises, keeps or resolves:
 *
 * - DeviceOffline while the device is silent past devices.offline_after (starts at last seen + offline_after);
 * - DeviceMissingReadings when the device's missing count rose, until the gaps are filled (missing back to where it
 *   was) or resolve_after passes without a new gap. The first pass that sees a device takes its count as given;
 * - each rule while the latest value of its metric compares true, firing once that held for `for`. An offline
 *   device's rule alerts resolve (its values are no longer current; DeviceOffline says why).
 *
 * Only the owner evaluates a device: an alert of a device that moved to another node is dropped here without a
 * resolve (the new owner raises it with the same labels, which Alertmanager takes as the same alert); an alert of a
 * device deleted on its owner resolves.
 */
export class AlertEngine {
  private readonly rules: Rule[];
  private readonly active = new Map<string, Alert>();
  /** Per device, the missing count as last seen (a rise raises DeviceMissingReadings). */
  private readonly missingSeen = new Map<string, number>();
  /** Per active DeviceMissingReadings (by device): the count before it fired, and when it last rose. */
  private readonly missingRise = new Map<string, { before: number; lastRise: number }>();
  /** Per device, which rules cover it (bit per rule; the glob is tested once per device). */
  private readonly covered = new WeakMap<Device, Uint8Array>();
  /** Labels made from a device's resource, per Resource message (held until the device's resource changes). */
  private readonly labelCache = new WeakMap<Uint8Array, Record<string, string>>();
  private readonly cfg: AggregatorConfig['alerts'];

  constructor(
    cfg: AggregatorConfig['alerts'],
    private readonly deps: AlertEngineDeps,
  ) {
    this.cfg = cfg;
    this.rules = cfg.rules.map(compileRule);
  }

  /** Alerts active now (pending and firing). */
  list(): Alert[] {
    return [...this.active.values()];
  }

  get firingCount(): number {
    let n = 0;
    for (const a of this.active.values()) if (a.state === 'firing') n++;
    return n;
  }

  /** One pass over `devices` (every device this node holds) as of `now`. */
  evaluate(devices: Iterable<Device>, now: number): void {
    const changes: AlertChange[] = [];
    const seen = new Set<string>();
    const offlineAfter = this.deps.offlineAfterMs;
    for (const dev of devices) {
      const online = now - dev.lastSeen < offlineAfter;
      if (this.cfg.offline.enabled) {
        const silentFor = now - dev.lastSeen;
        this.level(dev, OFFLINE_ALERT, 'offline', !online, now, seen, changes, {
          severity: this.cfg.offline.severity,
          startsAt: dev.lastSeen + offlineAfter,
          value: Math.round(silentFor / 1000),
          forMs: 0,
          annotations: () => ({
            summary: `device ${dev.id} is offline`,
            description: `no data from ${dev.id} for ${Math.round(silentFor / 1000)} s (devices.offline_after ${offlineAfter / 1000} s); last seen ${new Date(dev.lastSeen).toISOString()}`,
          }),
        });
      }
      if (this.cfg.missing.enabled) this.missing(dev, now, seen, changes);
      for (let i = 0; i < this.rules.length; i++) {
        const rule = this.rules[i];
        if (!this.covers(dev, i)) continue;
        const slot = dev.shape.slotOf(rule.metric);
        const v = slot === undefined ? NaN : dev.m[slot * SLOT + LATEST_VALUE];
        const has = slot !== undefined && dev.m[slot * SLOT + LATEST_TS] !== -Infinity;
        const holds = online && has && compare(v, rule.op, rule.value);
        this.level(dev, rule.name, 'rule', holds, now, seen, changes, {
          severity: rule.severity,
          startsAt: now,
          value: v,
          forMs: rule.forMs,
          annotations: () => ({
            summary: `${rule.metric} of ${dev.id} is ${v} (${rule.op} ${rule.value})`,
            description: `${rule.name}: ${rule.metric} ${rule.op} ${rule.value}${rule.forMs > 0 ? ` for ${rule.forMs / 1000} s` : ''} on devices ${JSON.stringify(this.cfg.rules.find((r) => r.name === rule.name)?.devices ?? '*')}`,
          }),
        });
      }
    }
    // Alerts of devices this pass did not see: deleted here (resolved) or gone to another owner (dropped).
    for (const [k, a] of this.active) {
      if (seen.has(k)) continue;
      this.active.delete(k);
      if (a.state === 'firing' && this.deps.owns(a.device)) changes.push(this.resolve(a, now));
    }
    for (const id of this.missingSeen.keys()) if (!seen.has(key(MISSING_ALERT, id))) this.missingSeen.delete(id);
    for (const id of this.missingRise.keys()) if (!this.active.has(key(MISSING_ALERT, id))) this.missingRise.delete(id);
    if (changes.length > 0) this.deps.onChanges(changes);
  }

  /** A device's DeviceMissingReadings: raised when its missing count rises, resolved as documented above. */
  private missing(dev: Device, now: number, seen: Set<string>, changes: AlertChange[]): void {
    const k = key(MISSING_ALERT, dev.id);
    seen.add(k); // also keeps the device's missingSeen entry
    const missing = dev.seq.counts.missing;
    const was = this.missingSeen.get(dev.id);
    this.missingSeen.set(dev.id, missing);
    const a = this.active.get(k);
    const rise = this.missingRise.get(dev.id);
    if (a !== undefined && rise !== undefined) {
      if (!this.deps.owns(dev.id)) {
        this.active.delete(k);
        this.missingRise.delete(dev.id);
        return;
      }
      if (missing > a.value) {
        a.value = missing;
        rise.lastRise = now;
        a.annotations = missingAnnotations(dev.id, rise.before, missing);
      }
      if (missing <= rise.before || now - rise.lastRise >= this.cfg.missing.resolve_after) {
        this.active.delete(k);
        this.missingRise.delete(dev.id);
        changes.push(this.resolve(a, now));
      }
      return;
    }
    if (was === undefined || missing <= was || !this.deps.owns(dev.id)) return;
    const alert = this.raise(dev, MISSING_ALERT, 'missing', this.cfg.missing.severity, now, missing);
    if (alert === null) return;
    this.missingRise.set(dev.id, { before: was, lastRise: now });
    alert.annotations = missingAnnotations(dev.id, was, missing);
    alert.state = 'firing';
    changes.push({ alert, status: 'firing' });
  }

  /** Keeps a level-triggered alert in step with `holds`. */
  private level(
    dev: Device,
    alertname: string,
    kind: AlertKind,
    holds: boolean,
    now: number,
    seen: Set<string>,
    changes: AlertChange[],
    o: { severity: string; startsAt: number; value: number; forMs: number; annotations: () => Record<string, string> },
  ): void {
    const k = key(alertname, dev.id);
    const a = this.active.get(k);
    if (!holds) {
      if (a === undefined) return;
      this.active.delete(k);
      seen.add(k);
      if (a.state === 'firing' && this.deps.owns(dev.id)) changes.push(this.resolve(a, now));
      return;
    }
    seen.add(k);
    if (a === undefined) {
      if (!this.deps.owns(dev.id)) return;
      const alert = this.raise(dev, alertname, kind, o.severity, Math.min(o.startsAt, now), o.value);
      if (alert === null) return;
      alert.annotations = o.annotations();
      if (o.forMs === 0) {
        alert.state = 'firing';
        changes.push({ alert, status: 'firing' });
      }
      return;
    }
    if (!this.deps.owns(dev.id)) {
      this.active.delete(k);
      return;
    }
    a.value = o.value;
    if (a.state === 'pending' && now - a.startsAt >= o.forMs) {
      a.state = 'firing';
      a.annotations = o.annotations();
      changes.push({ alert: a, status: 'firing' });
    } else if (kind === 'offline') a.annotations = o.annotations();
  }

  private raise(
    dev: Device,
    alertname: string,
    kind: AlertKind,
    severity: string,
    startsAt: number,
    value: number,
  ): Alert | null {
    if (this.active.size >= this.cfg.max_active) {
      this.deps.onOverflow?.(alertname);
      return null;
    }
    const alert: Alert = {
      alertname,
      device: dev.id,
      tenant: dev.tenant,
      kind,
      severity,
      labels: {
        ...this.cfg.labels,
        ...this.deviceLabels(dev),
        ...(dev.tenant === '' ? {} : { tenant_id: dev.tenant }),
        alertname,
        device_id: dev.id,
        severity,
      },
      annotations: {},
      state: 'pending',
      startsAt,
      endsAt: null,
      value,
    };
    this.active.set(key(alertname, dev.id), alert);
    return alert;
  }

  private resolve(a: Alert, now: number): AlertChange {
    a.state = 'resolved';
    a.endsAt = now;
    return { alert: a, status: 'resolved' };
  }

  private deviceLabels(dev: Device): Record<string, string> {
    const r = dev.resource;
    if (r === null) return {};
    let labels = this.labelCache.get(r);
    if (labels === undefined) {
      try {
        labels = resourceLabels(resourceAttributes(r));
      } catch {
        labels = {}; // a resource that cannot be read names no labels (it was stored as received)
      }
      this.labelCache.set(r, labels);
    }
    return labels;
  }

  private covers(dev: Device, rule: number): boolean {
    let bits = this.covered.get(dev);
    if (bits === undefined) {
      bits = new Uint8Array(this.rules.length);
      for (let i = 0; i < this.rules.length; i++) bits[i] = this.rules[i].covers(dev.id) ? 1 : 2;
      this.covered.set(dev, bits);
    }
    return bits[rule] === 1;
  }
}

function missingAnnotations(device: string, before: number, missing: number): Record<string, string> {
  return {
    summary: `device ${device} has ${missing - before} readings missing`,
    description: `gaps in the seq of ${device}: ${missing} readings missing in all, ${before} before this alert fired`,
  };
}
