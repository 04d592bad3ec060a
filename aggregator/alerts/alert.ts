import { globTest } from '../../protocol/glob.js';
import type { AggregatorConfig } from '../config.js';

/**
 * An alert as the node raises it, and the rules it comes from. One alert per (alertname, device): its labels are
 * what Alertmanager groups and deduplicates by, so every node that ever evaluates a device gives it the same ones.
 */

export type AlertKind = 'offline' | 'missing' | 'rule';

export interface Alert {
  alertname: string;
  device: string;
  /** The device's tenant ('' = none): the API shows a tenant's token only its own alerts. */
  tenant: string;
  kind: AlertKind;
  severity: string;
  /** device_id, alertname, severity, the device's resource attributes (gateway, site…) and alerts.labels. */
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** pending: a rule's comparison holds, not yet for `for`; firing; resolved (sent once, then forgotten). */
  state: 'pending' | 'firing' | 'resolved';
  /** Epoch ms the condition began (pending or firing). */
  startsAt: number;
  /** Epoch ms it resolved (state resolved), else null. */
  endsAt: number | null;
  /** The value that raised it (a rule's metric value, the missing count, seconds of silence). */
  value: number;
}

/** A change worth telling receivers: an alert began firing, or resolved. */
export interface AlertChange {
  alert: Alert;
  status: 'firing' | 'resolved';
}

export const OFFLINE_ALERT = 'DeviceOffline';
export const MISSING_ALERT = 'DeviceMissingReadings';

export type RuleConfig = AggregatorConfig['alerts']['rules'][number];
export type Op = RuleConfig['op'];

export interface Rule {
  name: string;
  metric: string;
  /** Tests a device id against the rule's `devices` glob. */
  covers: (deviceId: string) => boolean;
  op: Op;
  value: number;
  forMs: number;
  severity: string;
}

export function compileRule(r: RuleConfig): Rule {
  return {
    name: r.name,
    metric: r.metric,
    covers: globTest(r.devices),
    op: r.op,
    value: r.value,
    forMs: r.for,
    severity: r.severity,
  };
}

export function compare(v: number, op: Op, threshold: number): boolean {
  switch (op) {
    case '>':
      return v > threshold;
    case '>=':
      return v >= threshold;
    case '<':
      return v < threshold;
    case '<=':
      return v <= threshold;
    case '==':
      return v === threshold;
    default:
      return v !== threshold; // '!='
  }
}

/** Largest number of resource attributes copied onto an alert's labels, and the longest value kept. */
const MAX_RESOURCE_LABELS = 32;
const MAX_LABEL_VALUE = 256;

/**
 * A device's resource attributes as Prometheus labels: names with every character outside [A-Za-z0-9_] made `_`
 * (`otlp_edge.gateway.id` → `otlp_edge_gateway_id`), values as text. `device.id` is left out (device_id carries it).
 */
export function resourceLabels(attrs: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  let n = 0;
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'device.id' || v === null || v === undefined) continue;
    if (n++ >= MAX_RESOURCE_LABELS) break;
    let name = k.replace(/[^A-Za-z0-9_]/g, '_');
    if (/^[0-9]/.test(name)) name = `_${name}`;
    if (name.startsWith('__')) name = name.replace(/^_+/, '_'); // __ names are Prometheus' own
    const text = typeof v === 'string' ? v : JSON.stringify(v);
    out[name] = text.length > MAX_LABEL_VALUE ? text.slice(0, MAX_LABEL_VALUE) : text;
  }
  return out;
}

/** An alert as GET /v1/alerts, the live stream and webhooks show it (times RFC 3339). */
export function alertJson(a: Alert, owner: string): Record<string, unknown> {
  return {
    alertname: a.alertname,
    device_id: a.device,
    ...(a.tenant === '' ? {} : { tenant: a.tenant }),
    kind: a.kind,
    severity: a.severity,
    state: a.state,
    starts_at: new Date(a.startsAt).toISOString(),
    ends_at: a.endsAt === null ? null : new Date(a.endsAt).toISOString(),
    value: a.value,
    labels: a.labels,
    annotations: a.annotations,
    owner,
  };
}
