import { OtlpEdgeError } from '../../protocol/errors.js';
import { AggregatorErrorCodes } from '../errors.js';
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Registry } from 'prom-client';
import { answerMetrics, answerProbe } from '../../runtime/ops/endpoints.js';
import type { ApiPrincipal, ApiTokens } from './tokens.js';
import type { DeviceQueries } from './device-queries.js';
import { answerGet, ApiError, deviceIdOf, iso, send, visibleTo } from './routes.js';
import type { Page } from './page.js';
import type { StreamServer, StreamTickets } from '../stream/server.js';
import { FilterError, parseFilter } from '../stream/messages.js';
import type { LeaveStatus } from '../cluster/leave.js';
import { parseDuration } from '../../protocol/config/units.js';

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
  /** The web page (null: api.page is off). */
  page: Page | null;
  /** The live stream, once the node runs (null before: GET /v1/stream answers 503). */
  stream: () => { server: StreamServer; tickets: StreamTickets; maxDevices: number } | null;
  /** POST /v1/cluster/leave: starts this node's departure and waits up to `waitMs` for it to be left. */
  leave: (waitMs: number) => Promise<LeaveStatus>;
}

/** Longest POST /v1/cluster/leave?wait= holds a request. */
const MAX_LEAVE_WAIT_MS = 60_000;

/** Upper bound on a POST body the API reads (tickets take none). */
const MAX_POST_BYTES = 4096;

/**
 * The aggregator's HTTP port: the JSON API (devices, their latest values, counts and rollups, the ring, the fleet's
 * totals, alerts), the live stream (GET /v1/stream, a WebSocket), the web page (/), and the operations endpoints
 * (/metrics, /healthz, /readyz). Every error is `{ "error": { "code", "message" } }` with a fitting status.
 *
 * With API tokens configured, everything but the probes needs one: `Authorization: Bearer <token>`, or Basic with
 * the token as the password (what a browser sends for the page once asked for it), or, for the stream only, a
 * one-use ticket (`?ticket=`, from POST /v1/stream/tickets).
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
        send(res, err.status, { error: { code: err.code, message: err.message } }, challenge(err, req.url));
      });
    });
    server.on('upgrade', (req, socket, head) => {
      try {
        this.upgrade(req, socket, head);
      } catch (e) {
        const err =
          e instanceof ApiError
            ? e
            : new ApiError(500, AggregatorErrorCodes.API_INTERNAL, `internal error: ${(e as Error).message}`);
        refuseUpgrade(socket, err);
      }
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
  private authorize(
    req: IncomingMessage,
    path: string,
    needs: 'read' | 'admin',
    ticket: string | null = null,
  ): ApiPrincipal | null {
    const tokens = this.opts.tokens();
    if (tokens === null) return null;
    let who: ApiPrincipal | { refused: string } = tokens.authenticate(req.headers.authorization);
    if (ticket !== null && req.headers.authorization === undefined) {
      const holder = this.opts.stream()?.tickets.spend(ticket) ?? null;
      who = holder === null ? { refused: 'unknown, used or expired stream ticket' } : { ...holder, role: 'read' };
    }
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
    const tickets = method === 'POST' && path === '/v1/stream/tickets';
    const leave = method === 'POST' && path === '/v1/cluster/leave';
    if (method !== 'GET' && method !== 'HEAD' && method !== 'DELETE' && !tickets && !leave) {
      throw new ApiError(
        405,
        AggregatorErrorCodes.API_METHOD,
        `${method} ${path} is not supported; the API answers GET (and DELETE /v1/devices/{id} and POST /v1/cluster/leave for admins, POST /v1/stream/tickets)`,
      );
    }
    if (answerProbe(path, res, this.opts.notReady)) return;
    const page = this.opts.page;
    const who = this.authorize(req, path, method === 'DELETE' || leave ? 'admin' : 'read');
    if (method === 'DELETE') return this.remove(req, res, path, who);
    if (tickets) return this.ticket(req, res, who);
    if (leave) return this.leave(req, res, url, who);
    if (page !== null && page.has(path)) return page.answer(path, res, method === 'HEAD');
    if (path === '/metrics') {
      // The node's counters name every tenant (tenant labels) and sum all their devices.
      if (who?.tenant !== undefined)
        throw new ApiError(
          403,
          AggregatorErrorCodes.API_FORBIDDEN,
          `token '${who.name}' is bound to tenant '${who.tenant}'; /metrics covers every tenant (scrape with a token of no tenant)`,
        );
      return answerMetrics(res, this.opts.registry);
    }
    if (path === '/v1/stream')
      throw new ApiError(
        426,
        AggregatorErrorCodes.API_BAD_REQUEST,
        'GET /v1/stream is a WebSocket: send Connection: Upgrade and Upgrade: websocket',
      );
    return answerGet(url, q, res, who?.tenant);
  }

  /** GET /v1/stream with Upgrade: websocket → the live stream (auth and filter checked before the upgrade). */
  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://api');
    if (url.pathname !== '/v1/stream' || req.method !== 'GET')
      throw new ApiError(404, AggregatorErrorCodes.API_NOT_FOUND, `${url.pathname} has no WebSocket; try /v1/stream`);
    const stream = this.opts.stream();
    if (stream === null)
      throw new ApiError(503, AggregatorErrorCodes.API_NOT_READY, 'this node is not ready: the stream is not open yet');
    let who: ApiPrincipal | null;
    try {
      who = this.authorize(req, url.pathname, 'read', url.searchParams.get('ticket'));
    } catch (e) {
      stream.server.metrics.refused.inc({ reason: 'auth' });
      throw e;
    }
    let filter;
    try {
      filter = parseFilter(url.searchParams, stream.maxDevices);
    } catch (e) {
      if (!(e instanceof FilterError)) throw e;
      stream.server.metrics.refused.inc({ reason: 'filter' });
      throw new ApiError(400, AggregatorErrorCodes.API_BAD_REQUEST, e.message);
    }
    if (stream.server.full) {
      stream.server.metrics.refused.inc({ reason: 'limit' });
      throw new ApiError(
        503,
        AggregatorErrorCodes.API_STREAM_LIMIT,
        `this node serves ${stream.server.size} stream clients, its limit (api.stream.max_connections); try another node or later`,
      );
    }
    if (who?.tenant !== undefined) filter.tenant = who.tenant;
    stream.server.upgrade(req, socket, head, filter, who?.name ?? '(open API)');
  }

  /** POST /v1/stream/tickets (read): a one-use ticket for opening the stream where no header can be set. */
  private ticket(req: IncomingMessage, res: ServerResponse, who: ApiPrincipal | null): void {
    const stream = this.opts.stream();
    if (stream === null)
      throw new ApiError(503, AggregatorErrorCodes.API_NOT_READY, 'this node is not ready: the stream is not open yet');
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > MAX_POST_BYTES)
      throw new ApiError(413, AggregatorErrorCodes.API_BAD_REQUEST, 'POST /v1/stream/tickets takes no body');
    req.resume();
    const t = stream.tickets.issue(who === null ? { name: '(open API)' } : { name: who.name, tenant: who.tenant });
    if (t === null)
      throw new ApiError(503, AggregatorErrorCodes.API_STREAM_LIMIT, 'too many stream tickets outstanding; try again');
    send(res, 200, { ticket: t.ticket, expires: iso(t.expires) }, { 'cache-control': 'no-store' });
  }

  /**
   * POST /v1/cluster/leave[?wait=30s] (admin): this node hands its devices off and leaves the ring (a scale-down).
   * 200 with `state: left` once it holds nothing the cluster needs, else 202 with what is left; ask again to wait more.
   */
  private async leave(req: IncomingMessage, res: ServerResponse, url: URL, who: ApiPrincipal | null): Promise<void> {
    req.resume();
    if (who?.tenant !== undefined)
      throw new ApiError(
        403,
        AggregatorErrorCodes.API_FORBIDDEN,
        `token '${who.name}' is bound to tenant '${who.tenant}'; only a token of no tenant may make a node leave the cluster`,
      );
    const wait = url.searchParams.get('wait') ?? '0s';
    const ms = parseDuration(wait);
    if (ms === null || ms > MAX_LEAVE_WAIT_MS)
      throw new ApiError(
        400,
        AggregatorErrorCodes.API_BAD_REQUEST,
        `wait: expected a duration up to 60s like 10s, got ${JSON.stringify(wait.slice(0, 40))}`,
      );
    const audit = {
      audit: 'admin',
      action: 'leave_cluster',
      token: who?.name ?? '(open API)',
      remote: req.socket.remoteAddress,
    };
    let status: LeaveStatus;
    try {
      status = await this.opts.leave(ms);
    } catch (e) {
      if (e instanceof ApiError) throw e;
      const err = e instanceof OtlpEdgeError ? new ApiError(409, e.code, e.message) : e;
      this.opts.audit.warn({ ...audit, outcome: 'refused', reason: (err as Error).message }, 'admin action refused');
      throw err;
    }
    this.opts.audit.info({ ...audit, outcome: status.state, devices: status.devices }, 'admin action');
    send(res, status.state === 'left' ? 200 : 202, status, { 'cache-control': 'no-store' });
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
    if (!(await visibleTo(this.opts.queries, id, who?.tenant)))
      throw new ApiError(
        404,
        AggregatorErrorCodes.API_DEVICE_NOT_FOUND,
        `no device '${id}' of tenant '${who?.tenant}' has sent data to this cluster`,
      );
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

/**
 * The challenge of a 401: Basic for the page's own files (a browser then asks for the token, as the password),
 * Bearer for the API.
 */
function challenge(err: ApiError, url: string | undefined): Record<string, string> {
  if (err.status !== 401) return {};
  const path = (url ?? '/').split('?')[0];
  return path === '/' || path === '/index.html' || path.startsWith('/ui/')
    ? { 'www-authenticate': 'Basic realm="otlp-edge-aggregator", charset="UTF-8"' }
    : { 'www-authenticate': 'Bearer realm="otlp-edge-aggregator"' };
}

/** Answers a refused WebSocket upgrade with a plain HTTP response carrying the API's error body. */
function refuseUpgrade(socket: Duplex, err: ApiError): void {
  const body = JSON.stringify({ error: { code: err.code, message: err.message } });
  const extra = Object.entries(challenge(err, '/v1/stream'))
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Error'}\r\ncontent-type: application/json\r\n${extra}content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
