import { iso as isoOf } from '../rfc3339.js';
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
  /** Only devices of this tenant ('' = in no tenant); absent: every device. Set from the token, never from the URL. */
  tenant?: string;
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

const iso = (ms: number) => isoOf(ms) ?? '';

/**
 * What a subscriber's queue holds: a message's JSON, or `count` messages whose JSON is made only when a client takes
 * them (a device's readings from one batch: a client that cannot keep up drops most of them unread, so they cost it
 * next to nothing).
 */
export type LiveItem = string | { count: number; json(): string[] };

/** The messages of a live item, as JSON text. */
export function itemJson(item: LiveItem): string[] {
  return typeof item === 'string' ? [item] : item.json();
}

/** How many messages a live item counts for (against a queue's bound). */
export function itemCount(item: LiveItem): number {
  return typeof item === 'string' ? 1 : item.count;
}

/**
 * A device's readings from one batch as stream messages, one per distinct ts in the order they came:
 * `{ "type": "reading", "device", "ts", "seq"?, "metrics": { "<name>": value } }`. The readings are told apart at
 * once (to count them); their JSON is written on first demand, for all of them together, once per metric filter.
 */
export class ReadingSet {
  /** Reading of each point (-1: a point the state skips too: NaN or negative time, non-finite value). */
  private readonly readingOf: Int32Array;
  private readonly tsOf: number[] = [];
  private readonly seqOf: (number | undefined)[] = [];
  /** JSON of each reading, by metric filter ('' = all metrics). */
  private readonly built = new Map<string, (string | null)[]>();

  constructor(private readonly d: DeviceData) {
    const n = Math.min(d.metric.length, d.ts.length, d.value.length);
    this.readingOf = new Int32Array(n);
    const index = new Map<number, number>();
    for (let p = 0; p < n; p++) {
      const ts = d.ts[p];
      const v = d.value[p];
      if (!(ts >= 0) || v - v !== 0) {
        this.readingOf[p] = -1;
        continue;
      }
      let r = index.get(ts);
      if (r === undefined) {
        index.set(ts, (r = this.tsOf.length));
        this.tsOf.push(ts);
      }
      this.readingOf[p] = r;
    }
    for (let i = 0; i < d.seq.length; i++) {
      const r = index.get(d.seqTs[i]);
      if (r !== undefined) this.seqOf[r] = d.seq[i];
    }
  }

  get count(): number {
    return this.tsOf.length;
  }

  /** The JSON of reading `i` (null when the filter keeps none of its metrics). */
  json(i: number, metrics: readonly string[]): string | null {
    const key = metrics.join('\u0000');
    let all = this.built.get(key);
    if (all === undefined) this.built.set(key, (all = this.build(metrics.length > 0 ? new Set(metrics) : null)));
    return all[i];
  }

  private build(keep: Set<string> | null): (string | null)[] {
    const d = this.d;
    const parts: string[][] = this.tsOf.map(() => []);
    for (let p = 0; p < this.readingOf.length; p++) {
      const r = this.readingOf[p];
      if (r < 0 || (keep !== null && !keep.has(d.metric[p]))) continue;
      parts[r].push(`${JSON.stringify(d.metric[p])}:${d.value[p]}`);
    }
    const device = JSON.stringify(d.deviceId);
    return parts.map((metrics, r) => {
      if (metrics.length === 0) return null;
      const seq = this.seqOf[r] === undefined ? '' : `,"seq":${this.seqOf[r]}`;
      return `{"type":"reading","device":${device},"ts":"${iso(this.tsOf[r])}"${seq},"metrics":{${metrics.join(',')}}}`;
    });
  }
}

const countScratch = { ts: new Float64Array(64), set: new Set<number>() };

/**
 * How many reading messages a device's data makes (its distinct valid ts), without building them: what a stream
 * client's queue weighs before it knows whether the client will ever read them.
 */
export function readingCount(d: DeviceData): number {
  const n = Math.min(d.metric.length, d.ts.length, d.value.length);
  const seen = countScratch.ts;
  let k = 0;
  let last = NaN;
  let large = false;
  const set = countScratch.set;
  for (let p = 0; p < n; p++) {
    const ts = d.ts[p];
    const v = d.value[p];
    if (!(ts >= 0) || v - v !== 0 || ts === last) continue;
    last = ts;
    if (large) {
      set.add(ts);
      continue;
    }
    let i = k - 1;
    while (i >= 0 && seen[i] !== ts) i--;
    if (i >= 0) continue;
    if (k === seen.length) {
      // Many readings in one batch (a backlog): a set from here on.
      large = true;
      set.clear();
      for (let j = 0; j < k; j++) set.add(seen[j]);
      set.add(ts);
      continue;
    }
    seen[k++] = ts;
  }
  if (!large) return k;
  const count = set.size;
  set.clear();
  return count;
}

/**
 * Devices' readings from one batch as one live item for a subscriber: counted now, turned into messages only when a
 * client takes them (most are dropped unread when it cannot keep up, so they cost it next to nothing).
 */
export function readingsItem(devices: readonly DeviceData[], count: number, metrics: readonly string[]): LiveItem {
  return {
    count,
    json: () => {
      const out: string[] = [];
      for (const d of devices) {
        const set = new ReadingSet(d);
        for (let i = 0; i < set.count; i++) {
          const j = set.json(i, metrics);
          if (j !== null) out.push(j);
        }
      }
      return out;
    },
  };
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
