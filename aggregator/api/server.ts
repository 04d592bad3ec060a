import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** Times in answers are RFC 3339 (DESIGN.md "Response shapes"). */
const iso = (ms: number | null | undefined) => (ms === null || ms === undefined || !Number.isFinite(ms) ? null : new Date(ms).toISOString());

export interface DeviceSummary { id: string; online: boolean; lastSeen: number }
export interface DeviceDetail extends DeviceSummary {
  owner: string;
  latest: Record<string, { value: number; ts: number }>;
  counts: { received: number; duplicates: number; missing: number };
}
export interface RollupView { start: number; min: number; max: number; sum: number; count: number; last: number }
export interface RingView { version: number; vnodes: number; members: { id: string; address: string; healthy: boolean; share: number }[] }

/** What the API reads; a cluster fills it by asking the owner of each device. */
export interface DeviceQueries {
  device(id: string): Promise<DeviceDetail | undefined>;
  list(opts: { online?: boolean; limit: number; cursor?: string }): Promise<{ devices: DeviceSummary[]; next: string | null }>;
  series(id: string, metric: string, fromMs: number, toMs: number): Promise<RollupView[] | undefined>;
  ring(): RingView;
}

export interface ApiServerOptions {
  host: string;
  port: number;
  registry: Registry;
  queries: DeviceQueries;
  notReady: () => string | null;
}

class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

const MAX_LIMIT = 1000;
const DEFAULT_LIMIT = 100;
const DEFAULT_SERIES_WINDOW_MS = 3_600_000;

/** RFC 3339 text or epoch milliseconds → ms; `what` names the parameter in the error. */
function parseTime(v: string, what: string): number {
  const n = Number(v);
  if (v.trim() !== '' && Number.isFinite(n)) return n;
  const t = Date.parse(v);
  if (/^\d{4}-\d{2}-\d{2}T/.test(v) && Number.isFinite(t)) return t;
  throw new ApiError(400, 'OTLPEDGE_API_BAD_REQUEST', `${what}: expected an RFC 3339 time or epoch milliseconds, got ${JSON.stringify(v)}`);
}

/**
 * The aggregator's JSON API: devices, their latest values, counts and rollups, the ring, and the operations
 * endpoints (/metrics, /healthz, /readyz). Every error is `{ "error": { "code", "message" } }` with a fitting status.
 */
export class ApiServer {
  private server: Server | null = null;
  port = 0;

  constructor(private readonly opts: ApiServerOptions) {}

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      this.route(req, res).catch((e: unknown) => {
        const err = e instanceof ApiError ? e : new ApiError(500, 'OTLPEDGE_API_INTERNAL', `internal error: ${(e as Error).message}`);
        send(res, err.status, { error: { code: err.code, message: err.message } });
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://api');
    const path = url.pathname;
    const q = this.opts.queries;
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new ApiError(405, 'OTLPEDGE_API_METHOD', `${req.method} is not supported; the API is read-only (GET)`);
    if (path === '/healthz') return text(res, 200, 'ok\n');
    if (path === '/readyz') {
      const reason = this.opts.notReady();
      return text(res, reason === null ? 200 : 503, reason === null ? 'ready\n' : `not ready: ${reason}\n`);
    }
    if (path === '/metrics') {
      const body = await this.opts.registry.metrics();
      res.writeHead(200, { 'content-type': this.opts.registry.contentType }).end(body);
      return;
    }
    if (path === '/v1/ring') return send(res, 200, q.ring());
    if (path === '/v1/devices') {
      const online = url.searchParams.get('online');
      if (online !== null && online !== 'true' && online !== 'false') throw new ApiError(400, 'OTLPEDGE_API_BAD_REQUEST', `online: expected true or false, got ${JSON.stringify(online)}`);
      const limitText = url.searchParams.get('limit');
      const limit = limitText === null ? DEFAULT_LIMIT : Number(limitText);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new ApiError(400, 'OTLPEDGE_API_BAD_REQUEST', `limit: expected an integer from 1 to ${MAX_LIMIT}, got ${JSON.stringify(limitText)}`);
      const page = await q.list({ online: online === null ? undefined : online === 'true', limit, cursor: url.searchParams.get('cursor') ?? undefined });
      return send(res, 200, { devices: page.devices.map((d) => ({ id: d.id, online: d.online, last_seen: iso(d.lastSeen) })), next: page.next });
    }
    const m = /^\/v1\/devices\/([^/]+)(\/series)?$/.exec(path);
    if (m) {
      const id = decodeURIComponent(m[1]);
      if (m[2] === undefined) {
        const d = await q.device(id);
        if (!d) throw new ApiError(404, 'OTLPEDGE_API_DEVICE_NOT_FOUND', `no device '${id}' has sent data to this cluster`);
        const latest = Object.fromEntries(Object.entries(d.latest).map(([k, v]) => [k, { value: v.value, ts: iso(v.ts) }]));
        return send(res, 200, { id: d.id, online: d.online, last_seen: iso(d.lastSeen), owner: d.owner, latest, counts: d.counts });
      }
      const metric = url.searchParams.get('metric');
      if (!metric) throw new ApiError(400, 'OTLPEDGE_API_BAD_REQUEST', 'metric: required, e.g. /v1/devices/ID/series?metric=temperature');
      const to = url.searchParams.has('to') ? parseTime(url.searchParams.get('to')!, 'to') : Date.now();
      const from = url.searchParams.has('from') ? parseTime(url.searchParams.get('from')!, 'from') : to - DEFAULT_SERIES_WINDOW_MS;
      if (from > to) throw new ApiError(400, 'OTLPEDGE_API_BAD_REQUEST', `from (${iso(from)}) is after to (${iso(to)})`);
      const points = await q.series(id, metric, from, to);
      if (!points) throw new ApiError(404, 'OTLPEDGE_API_DEVICE_NOT_FOUND', `no device '${id}' has sent data to this cluster`);
      return send(res, 200, { metric, points: points.map((p) => ({ start: iso(p.start), min: p.min, max: p.max, sum: p.sum, count: p.count, last: p.last })) });
    }
    throw new ApiError(404, 'OTLPEDGE_API_NOT_FOUND', `no such endpoint ${path}; try /v1/devices, /v1/devices/{id}, /v1/devices/{id}/series, /v1/ring`);
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
}
