import type { ServerResponse } from 'node:http';
import { iso } from '../rfc3339.js';
import { AggregatorErrorCodes } from '../errors.js';
import { ID_RULE, isValidId } from '../../protocol/ids.js';
import { resourceAttributes } from '../../protocol/otlp/plain.js';
import type { DeviceQueries, FleetView } from './device-queries.js';
import { KEEP } from '../state/events.js';
import { tenantOfResource } from '../tenants/stamp.js';

/** An answer other than 200: status, stable code, message (the body is `{ "error": { "code", "message" } }`). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Times in answers are RFC 3339 (aggregator/README.md "HTTP API"). */
export { iso };

const MAX_LIMIT = 1000;
const DEFAULT_LIMIT = 100;
const DEFAULT_SERIES_WINDOW_MS = 3_600_000;
const MAX_MATCH = 200;

const bad = (message: string) => new ApiError(400, AggregatorErrorCodes.API_BAD_REQUEST, message);
const notFound = (id: string) =>
  new ApiError(404, AggregatorErrorCodes.API_DEVICE_NOT_FOUND, `no device '${id}' has sent data to this cluster`);

/** RFC 3339 text or epoch milliseconds → ms; `what` names the parameter in the error. */
function parseTime(v: string, what: string): number {
  const n = Number(v);
  if (v.trim() !== '' && Number.isFinite(n)) return n;
  const t = Date.parse(v);
  if (/^\d{4}-\d{2}-\d{2}T/.test(v) && Number.isFinite(t)) return t;
  throw bad(`${what}: expected an RFC 3339 time or epoch milliseconds, got ${JSON.stringify(v)}`);
}

export function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

/** A path segment → a device id, or 400: bad percent-encoding or an id outside the device-id rule. */
export function deviceIdOf(segment: string): string {
  let id: string;
  try {
    id = decodeURIComponent(segment);
  } catch {
    throw bad(`device id: malformed percent-encoding in ${JSON.stringify(segment.slice(0, 200))}`);
  }
  if (!isValidId(id)) throw bad(`device id: expected ${ID_RULE}, got ${JSON.stringify(id.slice(0, 200))}`);
  return id;
}

/** Decoded resource attributes ({} for none, or for a Resource that cannot be read). */
function resourceOf(bytes: Uint8Array | null): Record<string, unknown> {
  if (bytes === null) return {};
  try {
    return resourceAttributes(bytes);
  } catch {
    return {};
  }
}

/** GET /v1/fleet: the cluster's totals, and each member's. */
export function fleetJson(f: FleetView): Record<string, unknown> {
  const t = { devices: 0, online: 0, received: 0, duplicates: 0, missing: 0, readingsPerSecond: 0, alertsFiring: 0 };
  const missing: string[] = [];
  const members = f.ring.members.map((m) => {
    const s = f.summaries.get(m.id) ?? null;
    if (s === null) missing.push(m.id);
    else for (const k of Object.keys(t) as (keyof typeof t)[]) t[k] += s[k];
    return {
      ...m,
      devices: s?.devices ?? null,
      online: s?.online ?? null,
      readings_per_second: s === null ? null : round(s.readingsPerSecond),
      alerts_firing: s?.alertsFiring ?? null,
    };
  });
  return {
    devices: t.devices,
    online: t.online,
    offline: t.devices - t.online,
    readings_per_second: round(t.readingsPerSecond),
    counts: { received: t.received, duplicates: t.duplicates, missing: t.missing },
    alerts_firing: t.alertsFiring,
    ring: { version: f.ring.version, vnodes: f.ring.vnodes },
    members,
    ...(missing.length > 0 ? { missing_members: missing } : {}),
  };
}

const round = (n: number) => Math.round(n * 10) / 10;

/** `resolution=` of GET …/series: minutes per point. */
const RESOLUTIONS: Record<string, number> = { '1m': 1, '1h': 60, '1d': 1440 };
const resolutionName = (min: number) => Object.entries(RESOLUTIONS).find(([, m]) => m === min)?.[0] ?? `${min}m`;

/**
 * Whether a token bound to `tenant` (undefined: not bound) may see device `id`: it exists and is the tenant's. A
 * device of another tenant is answered 404 like an unknown one, so a token cannot learn other tenants' device ids.
 */
export async function visibleTo(q: DeviceQueries, id: string, tenant: string | undefined): Promise<boolean> {
  if (tenant === undefined) return true;
  const d = await q.device(id);
  return d !== undefined && tenantOfResource(d.resource) === tenant;
}

/** The JSON GET endpoints of the API (read role); `tenant`: the one tenant the token may see (undefined: all). */
export async function answerGet(url: URL, q: DeviceQueries, res: ServerResponse, tenant?: string): Promise<void> {
  const path = url.pathname;
  const params = url.searchParams;
  if (path === '/v1/ring') return send(res, 200, q.ring());
  if (path === '/v1/fleet') {
    if (tenant !== undefined)
      throw new ApiError(
        403,
        AggregatorErrorCodes.API_FORBIDDEN,
        `this token is bound to tenant '${tenant}'; GET /v1/fleet sums every tenant's devices (list yours with GET /v1/devices)`,
      );
    return send(res, 200, fleetJson(await q.fleet()));
  }
  if (path === '/v1/alerts') {
    const r = await q.alerts();
    const mine = tenant === undefined ? r.alerts : r.alerts.filter((a) => (a.tenant ?? '') === tenant);
    const alerts = mine.sort((a, b) =>
      String(a.starts_at) < String(b.starts_at) ? 1 : String(a.starts_at) > String(b.starts_at) ? -1 : 0,
    );
    return send(res, 200, { alerts, ...(r.missing.length > 0 ? { missing_members: r.missing } : {}) });
  }
  if (path === '/v1/devices') {
    const online = params.get('online');
    if (online !== null && online !== 'true' && online !== 'false')
      throw bad(`online: expected true or false, got ${JSON.stringify(online)}`);
    const limitText = params.get('limit');
    const limit = limitText === null ? DEFAULT_LIMIT : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
      throw bad(`limit: expected an integer from 1 to ${MAX_LIMIT}, got ${JSON.stringify(limitText)}`);
    const match = params.get('match') ?? undefined;
    if (match !== undefined && match.length > MAX_MATCH) throw bad(`match: at most ${MAX_MATCH} characters`);
    const page = await q.list({
      online: online === null ? undefined : online === 'true',
      limit,
      cursor: params.get('cursor') ?? undefined,
      match: match || undefined,
      tenant,
    });
    const body: Record<string, unknown> = {
      devices: page.devices.map((d) => ({ id: d.id, online: d.online, last_seen: iso(d.lastSeen) })),
      next: page.next,
    };
    // Members that could not be asked: the page is answered from the others and says whose devices are absent.
    if (page.missing && page.missing.length > 0) body.missing_members = page.missing;
    return send(res, 200, body);
  }
  const m = /^\/v1\/devices\/([^/]+)(\/series|\/events)?$/.exec(path);
  if (m) {
    const id = deviceIdOf(m[1]);
    if (m[2] !== undefined && !(await visibleTo(q, id, tenant))) throw notFound(id);
    if (m[2] === '/events') {
      const limitText = params.get('limit');
      const limit = limitText === null ? KEEP : Number(limitText);
      if (!Number.isInteger(limit) || limit < 1 || limit > KEEP)
        throw bad(`limit: expected an integer from 1 to ${KEEP}, got ${JSON.stringify(limitText)}`);
      const events = await q.events(id, limit);
      if (!events) throw notFound(id);
      return send(res, 200, { events });
    }
    if (m[2] === undefined) {
      const d = await q.device(id);
      if (!d || (tenant !== undefined && tenantOfResource(d.resource) !== tenant)) throw notFound(id);
      const latest = Object.fromEntries(
        Object.entries(d.latest).map(([k, v]) => [k, { value: v.value, ts: iso(v.ts) }]),
      );
      return send(res, 200, {
        id: d.id,
        online: d.online,
        last_seen: iso(d.lastSeen),
        owner: d.owner,
        latest,
        counts: d.counts,
        resource: resourceOf(d.resource),
      });
    }
    const metric = params.get('metric');
    if (!metric) throw bad('metric: required, e.g. /v1/devices/ID/series?metric=temperature');
    const to = params.has('to') ? parseTime(params.get('to')!, 'to') : Date.now();
    const from = params.has('from') ? parseTime(params.get('from')!, 'from') : to - DEFAULT_SERIES_WINDOW_MS;
    if (from > to) throw bad(`from (${iso(from)}) is after to (${iso(to)})`);
    const asked = params.get('resolution');
    const atLeast = asked === null ? 1 : Object.hasOwn(RESOLUTIONS, asked) ? RESOLUTIONS[asked] : undefined;
    if (atLeast === undefined)
      throw bad(`resolution: expected 1m, 1h or 1d, got ${JSON.stringify(asked!.slice(0, 20))}`);
    const series = await q.series(id, metric, from, to, atLeast);
    if (!series) throw notFound(id);
    return send(res, 200, {
      metric,
      resolution: resolutionName(series.resolutionMin),
      points: series.points.map((p) => ({
        start: iso(p.start),
        min: p.min,
        max: p.max,
        sum: p.sum,
        count: p.count,
        last: p.last,
      })),
    });
  }
  throw new ApiError(
    404,
    AggregatorErrorCodes.API_NOT_FOUND,
    `no such endpoint ${path}; try /v1/devices, /v1/devices/{id}, /v1/devices/{id}/series, /v1/devices/{id}/events, /v1/ring, /v1/fleet, /v1/alerts, /v1/stream`,
  );
}
