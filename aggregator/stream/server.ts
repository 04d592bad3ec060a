import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { WebSocket, WebSocketServer } from 'ws';
import type { AggregatorConfig } from '../config.js';
import type { ClusterMembership } from '../cluster/cluster-membership.js';
import type { LiveHub } from './hub.js';
import { ClusterFeed } from './feed.js';
import { itemJson, type LiveItem, type StreamFilter } from './messages.js';
import { LiveQueue } from './queue.js';

/** Close codes (4000–4999 are the application's, RFC 6455). */
export const CLOSE_TOO_SLOW = 4008;
export const CLOSE_SHUTDOWN = 1001;
/** Bytes the socket may hold unsent before the connection stops writing and lets its queue take the rest. */
const HIGH_WATER_BYTES = 1 << 20;
/** Messages written per turn of the event loop per connection. */
const PER_TURN = 1000;
const PING_MS = 30_000;

type StreamConfig = AggregatorConfig['api']['stream'];

class StreamMetrics {
  readonly dropped: Counter;
  readonly sent: Counter;
  readonly closed: Counter<'reason'>;
  readonly refused: Counter<'reason'>;

  constructor(registry: Registry, clients: () => number) {
    const registers = [registry];
    new Gauge({
      name: 'otlp_edge_aggregator_stream_clients',
      help: 'WebSocket live-stream clients connected to this node',
      registers,
      collect() {
        this.set(clients());
      },
    });
    this.sent = new Counter({
      name: 'otlp_edge_aggregator_stream_messages_total',
      help: 'Live-stream messages written to WebSocket clients',
      registers,
    });
    this.dropped = new Counter({
      name: 'otlp_edge_aggregator_stream_dropped_messages_total',
      help: 'Live-stream messages dropped because a client (or a subscribing member) read too slowly; clients are told how many',
      registers,
    });
    this.closed = new Counter({
      name: 'otlp_edge_aggregator_stream_closed_total',
      help: 'Live-stream connections ended, by reason (client, too_slow, shutdown)',
      labelNames: ['reason'] as const,
      registers,
    });
    this.refused = new Counter({
      name: 'otlp_edge_aggregator_stream_refused_total',
      help: 'Live-stream connections refused, by reason (limit, filter, auth)',
      labelNames: ['reason'] as const,
      registers,
    });
  }
}

/**
 * The live stream's WebSocket side: GET /v1/stream upgrades (the API authenticates and parses the filter first),
 * each connection subscribes at this node's hub and, in a cluster, at every other member (ClusterFeed), and writes
 * what arrives through a bounded queue. A client that reads too slowly never slows ingest: its oldest messages are
 * dropped, counted and announced, and once it has kept dropping for `slow_after` it is closed with 4008.
 */
export class StreamServer {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4096, perMessageDeflate: false });
  private readonly connections = new Set<Connection>();
  readonly metrics: StreamMetrics;
  private readonly ping: NodeJS.Timeout;

  constructor(
    private readonly cfg: StreamConfig,
    private readonly hub: LiveHub,
    private readonly cluster: ClusterMembership | null,
    private readonly nodeId: string,
    registry: Registry,
    private readonly log: Logger,
  ) {
    this.metrics = new StreamMetrics(registry, () => this.connections.size);
    this.ping = setInterval(() => {
      for (const c of this.connections) c.heartbeat();
    }, PING_MS).unref();
  }

  /** Whether another connection may open now. */
  get full(): boolean {
    return this.connections.size >= this.cfg.max_connections;
  }

  get size(): number {
    return this.connections.size;
  }

  /** Completes the upgrade of an authenticated request whose filter was read. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, filter: StreamFilter, who: string): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const c = new Connection(ws, filter, this.cfg, this.metrics, (reason) => {
        this.connections.delete(c);
        this.metrics.closed.inc({ reason });
        this.log.info({ who, remote: req.socket.remoteAddress, reason, dropped: c.dropped }, 'stream client left');
      });
      this.connections.add(c);
      c.start(this.hub, this.cluster, this.nodeId, this.log);
      this.log.info({ who, remote: req.socket.remoteAddress, filter }, 'stream client connected');
    });
  }

  close(): void {
    clearInterval(this.ping);
    for (const c of [...this.connections]) c.close(CLOSE_SHUTDOWN, 'node shutting down', 'shutdown');
    this.wss.close();
  }
}

class Connection {
  private readonly queue: LiveQueue;
  private unsubscribe: (() => void) | null = null;
  private feed: ClusterFeed | null = null;
  private scheduled = false;
  private timer: NodeJS.Timeout | null = null;
  private alive = true;
  private ended = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly filter: StreamFilter,
    private readonly cfg: StreamConfig,
    private readonly metrics: StreamMetrics,
    private readonly onEnd: (reason: 'client' | 'too_slow' | 'shutdown') => void,
  ) {
    this.queue = new LiveQueue(cfg.queue);
  }

  get dropped(): number {
    return this.queue.dropped;
  }

  start(hub: LiveHub, cluster: ClusterMembership | null, nodeId: string, log: Logger): void {
    const ws = this.ws;
    ws.on('pong', () => (this.alive = true));
    ws.on('close', () => this.end('client'));
    ws.on('error', () => this.end('client'));
    ws.on('message', () => undefined); // clients have nothing to say; maxPayload bounds what they may send
    this.push(
      JSON.stringify({
        type: 'hello',
        node: nodeId,
        filter: this.filter,
        queue: this.cfg.queue,
        members: cluster ? cluster.ring.members.map((m) => m.id) : [nodeId],
      }),
    );
    this.unsubscribe = hub.subscribe(this.filter, (json) => this.push(json));
    if (cluster)
      this.feed = new ClusterFeed(
        cluster,
        this.filter,
        {
          message: (json) => this.push(json),
          dropped: (n) => this.push(JSON.stringify({ type: 'dropped', count: n, member: true })),
          member: (id, state, reason) =>
            this.push(
              JSON.stringify(
                reason ? { type: 'member', member: id, state, reason } : { type: 'member', member: id, state },
              ),
            ),
        },
        log,
      );
  }

  private push(item: LiveItem): void {
    if (this.ended) return;
    // A client whose socket is full and whose queue has no room cannot take more soon: what comes is counted, not
    // held (holding the newest and dropping the oldest would churn memory, and the collector, until it reads again).
    const blocked = this.ws.bufferedAmount >= HIGH_WATER_BYTES && this.queue.overflows(item);
    const dropped = blocked ? this.queue.refuse(item) : this.queue.push(item);
    if (dropped > 0) this.metrics.dropped.inc(dropped);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.timer !== null || this.ended) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    if (this.ended) return;
    const since = this.queue.droppingSince;
    if (since !== null && Date.now() - since >= this.cfg.slow_after) {
      this.close(
        CLOSE_TOO_SLOW,
        `too slow: ${this.queue.dropped} messages dropped; read faster or narrow the filter`,
        'too_slow',
      );
      return;
    }
    if (this.ws.bufferedAmount >= HIGH_WATER_BYTES) {
      // The socket is full: look again soon (ws has no drain event of its own).
      this.timer = setTimeout(() => {
        this.timer = null;
        this.flush();
      }, 50);
      return;
    }
    // One write of many frames, not a system call per message.
    const socket = (this.ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    socket?.cork();
    const dropped = this.queue.takeUnannounced();
    if (dropped > 0) this.ws.send(JSON.stringify({ type: 'dropped', count: dropped, total: this.queue.dropped }));
    let sent = 0;
    for (const item of this.queue.take(PER_TURN))
      for (const json of itemJson(item)) {
        this.ws.send(json);
        sent++;
      }
    socket?.uncork();
    this.metrics.sent.inc(sent);
    if (this.queue.length > 0) this.schedule();
  }

  heartbeat(): void {
    if (!this.alive) {
      this.ws.terminate();
      return;
    }
    this.alive = false;
    this.ws.ping();
  }

  close(code: number, reason: string, why: 'too_slow' | 'shutdown'): void {
    this.ws.close(code, reason.slice(0, 120));
    this.end(why);
    // The close frame waits behind what the socket holds; a client that has not read it by then is cut off.
    setTimeout(() => this.ws.terminate(), why === 'shutdown' ? 2000 : 10_000).unref();
  }

  private end(reason: 'client' | 'too_slow' | 'shutdown'): void {
    if (this.ended) return;
    this.ended = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.unsubscribe?.();
    this.feed?.stop();
    this.onEnd(reason);
  }
}

/** Whom a ticket was issued to: the token's name (for the log) and the tenant it is bound to, if any. */
export interface TicketHolder {
  name: string;
  tenant?: string;
}

/**
 * One-use tickets for opening the stream from a browser (which cannot set an Authorization header on a WebSocket):
 * `POST /v1/stream/tickets` with a read token answers one, valid for `ttl` ms, and `GET /v1/stream?ticket=…` spends
 * it. A ticket in a URL or a log is worthless once used or expired.
 */
export class StreamTickets {
  private readonly tickets = new Map<string, { who: TicketHolder; expires: number }>();
  static readonly MAX = 10_000;

  constructor(private readonly ttlMs: number) {}

  /** A new ticket for `who`, or null when MAX tickets are outstanding. */
  issue(who: TicketHolder, now = Date.now()): { ticket: string; expires: number } | null {
    if (this.tickets.size >= StreamTickets.MAX) {
      for (const [t, v] of this.tickets) if (v.expires <= now) this.tickets.delete(t);
      if (this.tickets.size >= StreamTickets.MAX) return null;
    }
    const ticket = randomBytes(24).toString('base64url');
    const expires = now + this.ttlMs;
    this.tickets.set(ticket, { who, expires });
    return { ticket, expires };
  }

  /** Who a ticket was issued to, once; null for an unknown, spent or expired ticket. */
  spend(ticket: string, now = Date.now()): TicketHolder | null {
    const t = this.tickets.get(ticket);
    if (t === undefined) return null;
    this.tickets.delete(ticket);
    return t.expires > now ? t.who : null;
  }
}
