import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Backoff } from '../../runtime/retry/backoff.js';
import type { ClusterMembership } from '../cluster/cluster-membership.js';
import type { LiveHub } from './hub.js';
import { itemJson, LIVE_KINDS, type LiveKind, type StreamFilter } from './messages.js';
import { LiveQueue } from './queue.js';

/** Messages per LiveMessages a node sends a subscribing peer. */
const PER_WRITE = 500;

interface SubscribeRequest {
  fromNode: string;
  devices?: string[];
  prefixes?: string[];
  metrics?: string[];
  kinds?: string[];
  tenant?: string;
}

interface LiveMessages {
  messages?: string[];
  dropped?: number;
}

/** What one end of a stream needs to know when a member's feed is lost or joins again. */
export interface FeedEvents {
  message(json: string): void;
  /** Messages a member dropped for this stream (its queue was full). */
  dropped(n: number): void;
  member(id: string, state: 'lost' | 'joined', reason?: string): void;
}

/**
 * The node serving a stream client subscribes at every other member of the ring (Peer.Subscribe) with the
 * client's filter, and follows the ring: a member that joins is subscribed at, one that leaves is let go, one whose
 * feed breaks is subscribed at again with backoff while it is a member. The client is told of each lost feed and of
 * its return, so it knows where messages may be missing; it never has to reconnect for a ring change.
 */
export class ClusterFeed {
  private readonly feeds = new Map<string, MemberFeed>();
  private readonly stopChanges: () => void;
  private stopped = false;

  constructor(
    private readonly cluster: ClusterMembership,
    private readonly filter: StreamFilter,
    private readonly events: FeedEvents,
    private readonly log: Logger,
  ) {
    this.stopChanges = cluster.onChange(() => this.sync());
    this.sync();
  }

  private sync(): void {
    if (this.stopped) return;
    const self = this.cluster.self.id;
    const members = new Set(this.cluster.ring.members.map((m) => m.id).filter((id) => id !== self));
    for (const [id, f] of this.feeds)
      if (!members.has(id)) {
        f.stop();
        this.feeds.delete(id);
      }
    for (const id of members)
      if (!this.feeds.has(id)) {
        const f = new MemberFeed(id, this.cluster, this.filter, this.events, this.log);
        this.feeds.set(id, f);
        f.start();
      }
  }

  stop(): void {
    this.stopped = true;
    this.stopChanges();
    for (const f of this.feeds.values()) f.stop();
    this.feeds.clear();
  }
}

class MemberFeed {
  private call: grpc.ClientReadableStream<LiveMessages> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly backoff = new Backoff(200, 5000);
  private stopped = false;
  private lost = false;

  constructor(
    private readonly id: string,
    private readonly cluster: ClusterMembership,
    private readonly filter: StreamFilter,
    private readonly events: FeedEvents,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.stopped) return;
    const client = this.cluster.clientOf(this.id) as unknown as {
      Subscribe(req: SubscribeRequest, md: grpc.Metadata, o: grpc.CallOptions): grpc.ClientReadableStream<LiveMessages>;
    } | null;
    if (client === null) return this.retry('no connection to the member');
    const f = this.filter;
    const call = client.Subscribe(
      {
        fromNode: this.cluster.self.id,
        devices: f.devices,
        prefixes: f.prefixes,
        metrics: f.metrics,
        kinds: f.kinds,
        ...(f.tenant === undefined ? {} : { tenant: f.tenant }),
      },
      new grpc.Metadata(),
      {},
    );
    this.call = call;
    call.on('metadata', () => {
      this.backoff.reset();
      if (this.lost) {
        this.lost = false;
        this.events.member(this.id, 'joined');
      }
    });
    call.on('data', (m: LiveMessages) => {
      if (m.dropped) this.events.dropped(m.dropped);
      for (const json of m.messages ?? []) this.events.message(json);
    });
    call.on('error', (e: grpc.ServiceError) => {
      if (this.stopped || e.code === grpc.status.CANCELLED) return;
      this.retry(e.details || e.message);
    });
    call.on('end', () => {
      if (!this.stopped) this.retry('the member ended the feed');
    });
  }

  private retry(reason: string): void {
    this.call = null;
    if (this.stopped || this.timer !== null) return;
    if (!this.lost) {
      this.lost = true;
      this.events.member(this.id, 'lost', reason);
      this.log.debug({ member: this.id, reason }, 'live feed from a member lost; subscribing again');
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.start();
    }, this.backoff.next());
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.call?.cancel();
    this.call = null;
  }
}

/**
 * Peer.Subscribe as a node answers it: a hub subscription with the caller's filter, sent in LiveMessages of up to
 * PER_WRITE messages while the caller keeps up (gRPC flow control), queued up to `queue` messages otherwise, the
 * oldest dropped and counted. At most `max` subscriptions at once (RESOURCE_EXHAUSTED past it).
 */
export class PeerSubscriptions {
  /** Each open subscription, with its unsubscribe. */
  private readonly calls = new Map<grpc.ServerWritableStream<SubscribeRequest, LiveMessages>, () => void>();

  constructor(
    private readonly hub: LiveHub,
    private readonly limits: { queue: number; max: number },
    private readonly onDropped: (n: number) => void,
  ) {}

  readonly handler = (call: grpc.ServerWritableStream<SubscribeRequest, LiveMessages>): void => {
    if (this.calls.size >= this.limits.max) {
      call.emit('error', {
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: `this node serves ${this.limits.max} live subscriptions of other members already`,
      });
      return;
    }
    const r = call.request;
    const kinds = (r.kinds ?? []).filter((k): k is LiveKind => LIVE_KINDS.includes(k as LiveKind));
    const q = new LiveQueue(this.limits.queue);
    let blocked = false;
    let scheduled = false;
    const flush = () => {
      scheduled = false;
      while (!blocked && q.length > 0) {
        const dropped = q.takeUnannounced();
        const messages: string[] = [];
        for (const item of q.take(PER_WRITE)) messages.push(...itemJson(item));
        if (!call.write({ messages, dropped })) blocked = true;
      }
    };
    call.on('drain', () => {
      blocked = false;
      flush();
    });
    const unsubscribe = this.hub.subscribe(
      {
        devices: r.devices ?? [],
        prefixes: r.prefixes ?? [],
        metrics: r.metrics ?? [],
        kinds,
        ...(typeof r.tenant === 'string' ? { tenant: r.tenant } : {}),
      },
      (item) => {
        const dropped = q.push(item);
        if (dropped > 0) this.onDropped(dropped);
        if (!scheduled && !blocked) {
          scheduled = true;
          setImmediate(flush);
        }
      },
    );
    this.calls.set(call, unsubscribe);
    const close = () => {
      if (!this.calls.delete(call)) return;
      unsubscribe();
    };
    call.on('cancelled', close);
    call.on('close', close);
    call.on('error', close);
    call.sendMetadata(new grpc.Metadata());
  };

  get size(): number {
    return this.calls.size;
  }

  /** Ends every subscription (the node is stopping: the subscribers' feeds see the end and subscribe elsewhere). */
  stop(): void {
    for (const [call, unsubscribe] of [...this.calls]) {
      this.calls.delete(call);
      unsubscribe();
      call.end();
    }
  }
}
