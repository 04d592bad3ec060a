import { lastLogRecords } from '../../protocol/otlp/visit.js';
import { plainAttributes, plainValue } from '../../protocol/otlp/plain.js';
import { isValidId } from '../../protocol/ids.js';
import type { DeviceData } from '../device/types.js';

/**
 * The live stream's messages (GET /v1/stream, one JSON object per WebSocket message; aggregator/README.md "Live
 * stream") and the filter a client gives. Times are RFC 3339.
 *
 *   { "type": "hello", "node", "filter": {…}, "queue" }                          first, once
 *   { "type": "reading", "device", "ts", "seq"?, "metrics": { "<name>": value } }  one per reading (a device's ts)
 *   { "type": "event", "device", "ts", "severity", "body", "attributes" }         a log record of a device
 *   { "type": "status", "device", "online", "last_seen" }                        online/offline transitions
 *   { "type": "alert", "status": "firing" | "resolved", "alert": {…} }           as GET /v1/alerts shows alerts
 *   { "type": "dropped", "count", "total" }     messages this client missed (it reads too slowly), before the next
 *   { "type": "member", "member", "state": "lost" | "joined", "reason"? }       a cluster member's feed was lost or
 *                                                                               (re)joined: messages may be missing
 */

export type LiveKind = 'reading' | 'event' | 'status' | 'alert';
export const LIVE_KINDS: readonly LiveKind[] = ['reading', 'event', 'status', 'alert'];
/** Kinds sent unless the client names its own: events only on request (`events=true` or `kind=…,event`). */
export const DEFAULT_KINDS: readonly LiveKind[] = ['reading', 'status', 'alert'];

export interface StreamFilter {
  /** Exact device ids; with prefixes empty too, every device. */
  devices: string[];
  /** Device id prefixes (`device=pump-*`). */
  prefixes: string[];
  /** Metric names a reading keeps (empty: all). */
  metrics: string[];
  kinds: LiveKind[];
}

/** Why a filter cannot be used (the API answers 400 with it). */
export class FilterError extends Error {}

const MAX_METRICS = 100;
/** Prefixes per filter: each message is tested against every prefix of every subscriber, so they stay few. */
const MAX_PREFIXES = 64;

/**
 * `device`, `metric`, `kind` (each repeatable or comma-separated; a device ending in `*` is a prefix) and
 * `events=true` → a filter.
 */
export function parseFilter(params: URLSearchParams, maxDevices: number): StreamFilter {
  const many = (name: string) =>
    params
      .getAll(name)
      .flatMap((v) => v.split(','))
      .map((v) => v.trim())
      .filter((v) => v !== '');
  const devices: string[] = [];
  const prefixes: string[] = [];
  for (const d of many('device')) {
    const prefix = d.endsWith('*');
    const id = prefix ? d.slice(0, -1) : d;
    if (id === '' && prefix) continue; // `*`: every device
    if (!isValidId(id))
      throw new FilterError(`device: ${JSON.stringify(d.slice(0, 140))} is not a device id or a prefix ending in *`);
    (prefix ? prefixes : devices).push(id);
  }
  if (prefixes.length > MAX_PREFIXES)
    throw new FilterError(
      `device: ${prefixes.length} prefixes named; at most ${MAX_PREFIXES} (name ids, or a shorter prefix)`,
    );
  if (devices.length + prefixes.length > maxDevices)
    throw new FilterError(
      `device: ${devices.length + prefixes.length} ids and prefixes named; at most ${maxDevices} (api.stream.max_devices)`,
    );
  const metrics = many('metric');
  if (metrics.length > MAX_METRICS) throw new FilterError(`metric: at most ${MAX_METRICS} names`);
  let kinds = [...DEFAULT_KINDS];
  const named = many('kind');
  if (named.length > 0) {
    for (const k of named)
      if (!LIVE_KINDS.includes(k as LiveKind))
        throw new FilterError(`kind: ${JSON.stringify(k.slice(0, 40))}; expected ${LIVE_KINDS.join(', ')}`);
    kinds = [...new Set(named as LiveKind[])];
  }
  const events = params.get('events');
  if (events !== null && events !== 'true' && events !== 'false')
    throw new FilterError(`events: expected true or false, got ${JSON.stringify(events.slice(0, 40))}`);
  if (events === 'true' && !kinds.includes('event')) kinds.push('event');
  if (events === 'false') kinds = kinds.filter((k) => k !== 'event');
  return { devices: [...new Set(devices)], prefixes: [...new Set(prefixes)], metrics: [...new Set(metrics)], kinds };
}

/** A filter's test of device ids. */
export function deviceTest(f: StreamFilter): (id: string) => boolean {
  if (f.devices.length === 0 && f.prefixes.length === 0) return () => true;
  const exact = new Set(f.devices);
  const prefixes = f.prefixes;
  return (id) => {
    if (exact.has(id)) return true;
    for (const p of prefixes) if (id.startsWith(p)) return true;
    return false;
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

export interface ReadingMessage {
  type: 'reading';
  device: string;
  ts: string;
  seq?: number;
  metrics: Record<string, number>;
}

/** A device's data from one batch → one reading message per distinct ts, in the order the readings came. */
export function readingMessages(d: DeviceData): ReadingMessage[] {
  const byTs = new Map<number, ReadingMessage>();
  const at = (ts: number) => {
    let r = byTs.get(ts);
    if (r === undefined) byTs.set(ts, (r = { type: 'reading', device: d.deviceId, ts: iso(ts), metrics: {} }));
    return r;
  };
  const n = Math.min(d.metric.length, d.ts.length, d.value.length);
  for (let i = 0; i < d.seq.length; i++) if (d.seqTs[i] >= 0) at(d.seqTs[i]).seq = d.seq[i];
  for (let i = 0; i < n; i++) {
    const ts = d.ts[i];
    const v = d.value[i];
    if (!(ts >= 0) || v - v !== 0) continue; // as the state skips them
    Object.defineProperty(at(ts).metrics, d.metric[i], { value: v, enumerable: true, writable: true });
  }
  return [...byTs.values()].filter((r) => Object.keys(r.metrics).length > 0);
}

/** The reading with only the metrics named (null when it holds none of them). */
export function onlyMetrics(r: ReadingMessage, metrics: readonly string[]): ReadingMessage | null {
  const kept: Record<string, number> = {};
  let any = false;
  for (const m of metrics)
    if (Object.prototype.hasOwnProperty.call(r.metrics, m)) {
      Object.defineProperty(kept, m, { value: r.metrics[m], enumerable: true, writable: true });
      any = true;
    }
  return any ? { ...r, metrics: kept } : null;
}

export interface EventMessage {
  type: 'event';
  device: string;
  ts: string;
  severity: string;
  body: unknown;
  attributes: Record<string, unknown>;
}

const SEVERITY_NAMES = ['', 'TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];

/**
 * Log records of an OTLP logs request → event messages of the devices `wanted` accepts, at most the last
 * `perDevice` of each device's resource (a flood of records is walked, not decoded).
 */
export function eventMessages(
  otlp: Uint8Array,
  wanted: (device: string) => boolean,
  perDevice: number,
): EventMessage[] {
  const out: EventMessage[] = [];
  for (const { deviceId, records } of lastLogRecords(otlp, perDevice, wanted))
    for (const r of records) {
      const ns = r.timeUnixNano && r.timeUnixNano !== '0' ? r.timeUnixNano : (r.observedTimeUnixNano ?? '0');
      const n = r.severityNumber ?? 0;
      out.push({
        type: 'event',
        device: deviceId,
        ts: iso(Number(BigInt(ns) / 1_000_000n)),
        severity: r.severityText || SEVERITY_NAMES[Math.ceil(n / 4)] || 'UNSPECIFIED',
        body: r.body === undefined ? null : plainValue(r.body),
        attributes: plainAttributes(r.attributes),
      });
    }
  return out;
}

export function statusMessage(device: string, online: boolean, lastSeen: number): string {
  return JSON.stringify({ type: 'status', device, online, last_seen: iso(lastSeen) });
}
