import { OtlpEdgeError } from '../../protocol/errors.js';
import { AggregatorErrorCodes } from '../errors.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { answerMetrics, answerProbe } from '../../runtime/ops/endpoints.js';
import { ID_RULE, isValidId } from '../../protocol/ids.js';
import type { ApiPrincipal, ApiTokens } from './tokens.js';
import type { DeviceQueries } from './device-queries.js';

/** Times in answers are RFC 3339 (aggregator/README.md "HTTP API"). */
const iso = (ms: number | null | undefined) =>
  ms === null || ms === undefined || !Number.isFinite(ms) ? null : new Date(ms).toISOString();

/** Where the API writes who did what: refused requests and admin actions, with the token's name, never the token. */
export interface AuditLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ApiServerOptions {
  host: string;
  port: number;
  registry: Registry;
  queries: DeviceQueries;
  notReady: () => string | null;
  /** The API tokens in force (swapped on SIGHUP); null = the API is open (development only). */
  tokens: () => ApiTokens | null;
  audit: AuditLog;
  /** A request refused with 401 or 403 (counted in /metrics). */
  onRefused?: (status: 401 | 403) => void;
}

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

const MAX_LIMIT = 1000;
const DEFAULT_LIMIT = 100;
const DEFAULT_SERIES_WINDOW_MS = 3_600_000;

/** RFC 3339 text or epoch milliseconds → ms; `what` names the parameter in the error. */
function parseTime(v: string, what: string): number {
  const n = Number(v);
  if (v.trim() !== '' && Number.isFinite(n)) return n;
  const t = Date.parse(v);
  if (/^\d{4}-\d{2}-\d{2}T/.test(v) && Number.isFinite(t)) return t;
  throw new ApiError(
    400,
    AggregatorErrorCodes.API_BAD_REQUEST,
    `${what}: expected an RFC 3339 time or epoch milliseconds, got ${JSON.stringify(v)}`,
  );
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
        const err =
          e instanceof ApiError
            ? e
            : e instanceof OtlpEdgeError && e.code === AggregatorErrorCodes.API_OWNER_UNREACHABLE
              ? new ApiError(503, e.code, e.message)
              : new ApiError(500, AggregatorErrorCodes.API_INTERNAL, `internal error: ${(e as Error).message}`);
        const headers: Record<string, string> =
          err.status === 401 ? { 'www-authenticate': 'Bearer realm="otlp-edge-aggregator"' } : {};
        send(res, err.status, { error: { code: err.code, message: err.message } }, headers);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /**
   * Who may do this: null when allowed (or the API is open), else throws 401/403 after writing the audit line.
   * Probes (/healthz, /readyz) are open; reading needs a `read` or `admin` token; changing state needs `admin`.
   */
  private authorize(req: IncomingMessage, path: string, needs: 'read' | 'admin'): ApiPrincipal | null {
    const tokens = this.opts.tokens();
    if (tokens === null) return null;
    const who = tokens.authenticate(req.headers.authorization);
    const remote = req.socket.remoteAddress;
    if ('refused' in who) {
      this.opts.onRefused?.(401);
      this.opts.audit.warn(
        { audit: 'refused', status: 401, method: req.method, path, remote, reason: who.refused },
        'API request refused: not authenticated',
      );
      throw new ApiError(
        401,
        AggregatorErrorCodes.API_UNAUTHENTICATED,
        `${who.refused} (auth.api_tokens_file lists the tokens)`,
      );
    }
    if (needs === 'admin' && who.role !== 'admin') {
      this.opts.onRefused?.(403);
      this.opts.audit.warn(
        { audit: 'refused', status: 403, method: req.method, path, remote, token: who.name, role: who.role },
        'API request refused: role may not',
      );
      throw new ApiError(
        403,
        AggregatorErrorCodes.API_FORBIDDEN,
        `token '${who.name}' has role ${who.role}; ${req.method} ${path} needs an admin token`,
      );
    }
    return who;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://api');
    const path = url.pathname;
    const q = this.opts.queries;
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD' && method !== 'DELETE') {
      throw new ApiError(
        405,
        AggregatorErrorCodes.API_METHOD,
        `${method} is not supported; the API answers GET (and DELETE /v1/devices/{id} for admins)`,
      );
    }
    if (answerProbe(path, res, this.opts.notReady)) return;
    const who = this.authorize(req, path, method === 'DELETE' ? 'admin' : 'read');
    if (method === 'DELETE') return this.remove(req, res, path, who);
    if (path === '/metrics') return answerMetrics(res, this.opts.registry);
    if (path === '/v1/ring') return send(res, 200, q.ring());
    if (path === '/v1/devices') {
      const online = url.searchParams.get('online');
      if (online !== null && online !== 'true' && online !== 'false')
        throw new ApiError(
          400,
          AggregatorErrorCodes.API_BAD_REQUEST,
          `online: expected true or false, got ${JSON.stringify(online)}`,
        );
      const limitText = url.searchParams.get('limit');
      const limit = limitText === null ? DEFAULT_LIMIT : Number(limitText);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
        throw new ApiError(
          400,
          AggregatorErrorCodes.API_BAD_REQUEST,
          `limit: expected an integer from 1 to ${MAX_LIMIT}, got ${JSON.stringify(limitText)}`,
        );
      const page = await q.list({
        online: online === null ? undefined : online === 'true',
        limit,
        cursor: url.searchParams.get('cursor') ?? undefined,
      });
      const body: Record<string, unknown> = {
        devices: page.devices.map((d) => ({ id: d.id, online: d.online, last_seen: iso(d.lastSeen) })),
        next: page.next,
      };
      // Members that could not be asked: the page is answered from the others and says whose devices are absent.
      if (page.missing && page.missing.length > 0) body.missing_members = page.missing;
      return send(res, 200, body);
    }
    const m = /^\/v1\/devices\/([^/]+)(\/series)?$/.exec(path);
    if (m) {
      const id = deviceIdOf(m[1]);
      if (m[2] === undefined) {
        const d = await q.device(id);
        if (!d)
          throw new ApiError(
            404,
            AggregatorErrorCodes.API_DEVICE_NOT_FOUND,
            `no device '${id}' has sent data to this cluster`,
          );
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
        });
      }
      const metric = url.searchParams.get('metric');
      if (!metric)
        throw new ApiError(
          400,
          AggregatorErrorCodes.API_BAD_REQUEST,
          'metric: required, e.g. /v1/devices/ID/series?metric=temperature',
        );
      const to = url.searchParams.has('to') ? parseTime(url.searchParams.get('to')!, 'to') : Date.now();
      const from = url.searchParams.has('from')
        ? parseTime(url.searchParams.get('from')!, 'from')
        : to - DEFAULT_SERIES_WINDOW_MS;
      if (from > to)
        throw new ApiError(400, AggregatorErrorCodes.API_BAD_REQUEST, `from (${iso(from)}) is after to (${iso(to)})`);
      const points = await q.series(id, metric, from, to);
      if (!points)
        throw new ApiError(
          404,
          AggregatorErrorCodes.API_DEVICE_NOT_FOUND,
          `no device '${id}' has sent data to this cluster`,
        );
      return send(res, 200, {
        metric,
        points: points.map((p) => ({
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
      `no such endpoint ${path}; try /v1/devices, /v1/devices/{id}, /v1/devices/{id}/series, /v1/ring`,
    );
  }

  /** DELETE /v1/devices/{id} (admin): forgets the device on every member of the cluster. */
  private async remove(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    who: ApiPrincipal | null,
  ): Promise<void> {
    const m = /^\/v1\/devices\/([^/]+)$/.exec(path);
    if (!m)
      throw new ApiError(405, AggregatorErrorCodes.API_METHOD, `DELETE is only for /v1/devices/{id}, not ${path}`);
    const id = deviceIdOf(m[1]);
    const audit = {
      audit: 'admin',
      action: 'delete_device',
      device: id,
      token: who?.name ?? '(open API)',
      remote: req.socket.remoteAddress,
    };
    let r: { nodes: string[]; missing: string[] };
    try {
      r = await this.opts.queries.remove(id, who?.name ?? '');
    } catch (e) {
      this.opts.audit.warn({ ...audit, outcome: 'failed', err: (e as Error).message }, 'admin action failed');
      throw e;
    }
    this.opts.audit.info(
      { ...audit, outcome: r.nodes.length > 0 ? 'deleted' : 'not_found', nodes: r.nodes, missing: r.missing },
      'admin action',
    );
    if (r.missing.length > 0) {
      throw new ApiError(
        503,
        AggregatorErrorCodes.API_MEMBERS_UNREACHABLE,
        `device '${id}' was deleted on ${r.nodes.length} node(s) but members ${r.missing.join(', ')} could not be reached; try again`,
      );
    }
    if (r.nodes.length === 0)
      throw new ApiError(
        404,
        AggregatorErrorCodes.API_DEVICE_NOT_FOUND,
        `no device '${id}' has sent data to this cluster`,
      );
    send(res, 200, { id, deleted: true, nodes: r.nodes });
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  }
}

/** A path segment → a device id, or 400: bad percent-encoding or an id outside the device-id rule. */
function deviceIdOf(segment: string): string {
  let id: string;
  try {
    id = decodeURIComponent(segment);
  } catch {
    throw new ApiError(
      400,
      AggregatorErrorCodes.API_BAD_REQUEST,
      `device id: malformed percent-encoding in ${JSON.stringify(segment.slice(0, 200))}`,
    );
  }
  if (!isValidId(id))
    throw new ApiError(
      400,
      AggregatorErrorCodes.API_BAD_REQUEST,
      `device id: expected ${ID_RULE}, got ${JSON.stringify(id.slice(0, 200))}`,
    );
  return id;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}
