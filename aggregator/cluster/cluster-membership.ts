import * as grpc from '@grpc/grpc-js';
import { Resolver } from 'node:dns/promises';
import type { Logger } from 'pino';
import { HashRing, type RingMember } from '../../protocol/ring/ring.js';
import type { RingInfo } from '../../protocol/uplink/messages.js';
import type { Membership, RingView } from './membership.js';
import { peerServiceDefinition, type ProbeReply } from './peer-service.js';
import { peerClientInterceptor, type PeerSecret } from './peer-auth.js';
import type { AggregatorConfig } from '../config.js';
import { OtlpEdgeError } from '../../protocol/errors.js';
import { AggregatorErrorCodes } from '../errors.js';

export interface ClusterOptions {
  self: { id: string; address: string };
  /**
   * The self address is a stand-in (grpc.host is a wildcard and neither cluster.advertise nor cluster.members names
   * this node): take the address of the DNS record that turns out to point at this node, so that every node, and
   * every agent, sees the same members and the same ring version.
   */
  learnSelfAddress?: boolean;
  /** Static members `{ id, address }` (cluster.members); may include self. */
  members: RingMember[];
  /** A name whose A/AAAA records are the members (cluster.dns); '' = static only. */
  dns: string;
  /** gRPC port paired with each DNS address. */
  dnsPort: number;
  /** A resolver `host:port` to ask instead of the system's (cluster.dns_server); '' = system. */
  dnsServer: string;
  vnodes: number;
  /** How often peers are probed, ms (cluster.probe_interval). */
  probeIntervalMs: number;
  /** A member that fails probes for this long leaves the ring, ms (cluster.failure_timeout). */
  failureTimeoutMs: number;
  /** How often the DNS name is resolved again, ms (cluster.dns_interval). */
  dnsIntervalMs: number;
  /** Signs every peer call (cluster.secret_file); null = calls go unsigned (development). */
  secret: PeerSecret | null;
  /**
   * TLS for peer channels (the node serves TLS, so its peers do too): trusted CA (null = the system's), this node's
   * certificate as client certificate, and the name peer certificates must carry ('' = the host of their address).
   */
  tls: { ca: Buffer | null; cert: Buffer; key: Buffer; serverName: string } | null;
}

type PeerStub = grpc.Client &
  Record<
    string,
    (
      req: object,
      md: grpc.Metadata,
      opts: grpc.CallOptions,
      cb: (err: grpc.ServiceError | null, res?: any) => void,
    ) => void
  >;
const PeerClient = grpc.makeGenericClientConstructor(
  peerServiceDefinition as unknown as grpc.ServiceDefinition,
  'Peer',
);

interface Peer {
  address: string;
  /** Known from static config or learned from its probe reply. */
  id: string | null;
  healthy: boolean;
  lastOk: number;
  client: PeerStub;
  /** Has answered a probe at least once (a static member starts in the ring before it was ever reached). */
  reached: boolean;
  /** The last probe was refused for its credential (logged once until a probe succeeds). */
  refused: boolean;
  /** Its last probe reply said it is leaving the cluster: out of the ring until it answers otherwise. */
  leaving: boolean;
}

/**
 * Cluster membership: the configured or DNS-discovered peers, probed over the peer gRPC service. A peer that fails
 * probes for `failureTimeoutMs` leaves the ring and returns when a probe succeeds again. The ring (and its version)
 * is rebuilt whenever the healthy set changes; every node with the same view computes the same ring.
 */
export class ClusterMembership implements Membership {
  private peers = new Map<string, Peer>();
  private ringValue: HashRing;
  private timers: NodeJS.Timeout[] = [];
  private listeners: ((ring: HashRing) => void)[] = [];
  private readonly resolver = new Resolver();
  private selfValue: { id: string; address: string };
  private selfLearned = false;
  private leavingSelf = false;

  constructor(
    private readonly opts: ClusterOptions,
    private readonly log: Logger,
  ) {
    this.selfValue = opts.self;
    if (opts.dnsServer) this.resolver.setServers([opts.dnsServer]);
    // Static members start healthy: a booting cluster begins with the full ring instead of shuffling devices
    // while the first probes come back. A dead member leaves after failureTimeoutMs like any other.
    for (const m of opts.members) if (m.id !== opts.self.id) this.addPeer(m.address, m.id, true);
    this.ringValue = this.buildRing();
  }

  get self(): { id: string; address: string } {
    return this.selfValue;
  }

  get ring(): HashRing {
    return this.ringValue;
  }

  /** Calls `fn` with each new ring; returns the call that stops it. */
  onChange(fn: (ring: HashRing) => void): () => void {
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** Ids of the members in the ring and of known members outside it (unhealthy, or never reached). */
  memberIds(): string[] {
    const ids = new Set(this.ringValue.members.map((m) => m.id));
    for (const p of this.peers.values()) if (p.id !== null && p.id !== this.opts.self.id) ids.add(p.id);
    return [...ids];
  }

  /** The gRPC client of a member, by id (for forwarding and API proxying). */
  clientOf(id: string): PeerStub | null {
    for (const p of this.peers.values()) if (p.id === id) return p.client;
    return null;
  }

  private addPeer(address: string, id: string | null, healthy: boolean): void {
    if (this.peers.has(address)) return;
    // Peers reconnect fast: gRPC's default backoff (up to 2 minutes) would keep a member that restarted unreachable
    // long after its probes say it is back.
    const t = this.opts.tls;
    const creds = t ? grpc.credentials.createSsl(t.ca, t.key, t.cert) : grpc.credentials.createInsecure();
    const client = new PeerClient(address, creds, {
      'grpc.max_receive_message_length': 64 << 20,
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      ...(t?.serverName ? { 'grpc.ssl_target_name_override': t.serverName } : {}),
      interceptors: this.opts.secret ? [peerClientInterceptor(this.opts.secret, this.opts.self.id)] : [],
    }) as unknown as PeerStub;
    this.peers.set(address, {
      address,
      id,
      healthy,
      lastOk: healthy ? Date.now() : 0,
      client,
      refused: false,
      reached: false,
      leaving: false,
    });
  }

  start(): void {
    this.timers.push(setInterval(() => void this.probeAll(), this.opts.probeIntervalMs));
    void this.probeAll();
    if (this.opts.dns) {
      void this.resolve();
      this.timers.push(setInterval(() => void this.resolve(), this.opts.dnsIntervalMs));
    }
  }

  private async resolve(): Promise<void> {
    const name = this.opts.dns;
    let addrs: string[] = [];
    try {
      const [v4, v6] = await Promise.all([
        this.resolver.resolve4(name).catch(() => []),
        this.resolver.resolve6(name).catch(() => []),
      ]);
      addrs = [...v4, ...v6.map((a) => `[${a}]`)].map((a) => `${a}:${this.opts.dnsPort}`);
    } catch (e) {
      this.log.warn({ dns: name, err: (e as Error).message }, 'cluster DNS lookup failed; keeping the members known');
      return;
    }
    if (addrs.length === 0) return;
    const wanted = new Set(addrs);
    for (const a of addrs) this.addPeer(a, null, false);
    let changed = false;
    for (const [a, p] of this.peers) {
      if (!wanted.has(a) && !this.opts.members.some((m) => m.address === a)) {
        p.client.close();
        this.peers.delete(a);
        changed = true;
      }
    }
    if (changed) this.rebuild();
    void this.probeAll();
  }

  private async probeAll(): Promise<void> {
    await Promise.all([...this.peers.values()].map((p) => this.probe(p)));
    this.rebuild();
  }

  private probe(p: Peer): Promise<void> {
    return new Promise((resolve) => {
      p.client.Probe(
        { nodeId: this.opts.self.id, ringVersion: this.ringValue.version },
        new grpc.Metadata(),
        { deadline: Date.now() + Math.max(500, this.opts.probeIntervalMs) },
        (err, reply: ProbeReply | undefined) => {
          const now = Date.now();
          const refused = err?.code === grpc.status.UNAUTHENTICATED || err?.code === grpc.status.PERMISSION_DENIED;
          if (refused && !p.refused) {
            this.log.error(
              { member: p.id, address: p.address, err: err?.details },
              "a cluster member refused this node's peer credential: every member needs the same cluster.secret_file (and TLS setting)",
            );
          }
          p.refused = refused;
          if (!err && reply?.leaving) {
            if (!p.leaving)
              this.log.info({ member: reply.nodeId, address: p.address }, 'cluster member is leaving; out of the ring');
            p.id = reply.nodeId;
            p.leaving = true;
            p.healthy = false;
          } else if (!err && reply && reply.ready) {
            p.leaving = false;
            if (reply.nodeId === this.opts.self.id) {
              // A DNS record pointing at this node itself.
              p.id = reply.nodeId;
              p.healthy = false;
              if (this.opts.learnSelfAddress && !this.selfLearned) {
                this.selfLearned = true;
                if (p.address !== this.selfValue.address) {
                  this.log.info(
                    { address: p.address, was: this.selfValue.address },
                    "this node's address learned from its cluster.dns record",
                  );
                  this.selfValue = { id: this.selfValue.id, address: p.address };
                }
              }
            } else {
              p.id = reply.nodeId;
              p.healthy = true;
              p.reached = true;
              p.lastOk = now;
            }
          } else if (p.healthy && now - p.lastOk >= this.opts.failureTimeoutMs) {
            p.healthy = false;
            this.log.warn(
              { member: p.id, address: p.address, err: err?.details },
              'cluster member failed its probes; leaving the ring',
            );
          }
          resolve();
        },
      );
    });
  }

  private buildRing(): HashRing {
    const members: RingMember[] = [];
    for (const p of this.peers.values())
      if (p.healthy && p.id !== null && p.id !== this.opts.self.id) members.push({ id: p.id, address: p.address });
    // A leaving node owns nothing, unless no other member is left to own anything (then it must keep its devices).
    if (!this.leavingSelf || members.length === 0) members.unshift(this.selfValue);
    return new HashRing(members, this.opts.vnodes);
  }

  /** Whether this node is leaving the cluster. */
  get leaving(): boolean {
    return this.leavingSelf;
  }

  /**
   * Leaves the ring for good (until this process restarts): from now on this node owns no device, its probe replies
   * tell the other members to take it out of their rings at once, and the rebalancer hands every device it holds to
   * its new owner. Throws when no other member is healthy, as there would be no one to hand the devices to.
   */
  leave(): void {
    if (this.leavingSelf) return;
    const others = [...this.peers.values()].filter((p) => p.healthy && p.id !== null && p.id !== this.opts.self.id);
    if (others.length === 0)
      throw new OtlpEdgeError(
        AggregatorErrorCodes.CLUSTER_LEAVE_ALONE,
        "no other healthy cluster member to hand this node's devices to; start or repair another member first (GET /v1/ring shows them)",
      );
    this.leavingSelf = true;
    this.log.warn({ members: others.map((p) => p.id) }, 'leaving the cluster: handing every device off');
    this.rebuild();
  }

  private rebuild(): void {
    const next = this.buildRing();
    if (next.version === this.ringValue.version) return;
    const before = this.ringValue.members.map((m) => m.id);
    this.ringValue = next;
    this.log.info({ version: next.version, members: next.members.map((m) => m.id), before }, 'ring changed');
    for (const fn of this.listeners) fn(next);
  }

  owner(deviceId: string): string {
    return this.ringValue.owner(deviceId).id;
  }

  ringInfo(): RingInfo {
    return {
      version: this.ringValue.version,
      vnodes: this.ringValue.vnodes,
      members: this.ringValue.members.map((m) => ({ ...m, healthy: true })),
    };
  }

  view(): RingView {
    const share = this.ringValue.share();
    // A member in the ring is healthy once it has answered a probe: a static member that was never reached owns its
    // share (the ring starts full) but is not reported healthy.
    const reached = (id: string) =>
      id === this.selfValue.id || [...this.peers.values()].some((p) => p.id === id && p.reached);
    const members: RingView['members'] = this.ringValue.members.map((m) => ({
      id: m.id,
      address: m.address,
      healthy: reached(m.id),
      share: share.get(m.id) ?? 0,
    }));
    // Known members outside the ring are listed too, owning nothing: unhealthy, or leaving.
    if (this.leavingSelf && !members.some((m) => m.id === this.selfValue.id))
      members.push({ ...this.selfValue, healthy: true, share: 0, leaving: true });
    for (const p of this.peers.values()) {
      if (!p.healthy && p.id !== this.opts.self.id)
        members.push({
          id: p.id ?? p.address,
          address: p.address,
          healthy: p.leaving,
          share: 0,
          ...(p.leaving ? { leaving: true } : {}),
        });
    }
    return { version: this.ringValue.version, vnodes: this.ringValue.vnodes, members };
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    for (const p of this.peers.values()) p.client.close();
  }
}

/**
 * This node's membership from its configuration: the static members (this node must be among them unless DNS
 * finds the members) or the DNS name, probing and TLS as configured.
 */
export function clusterMembership(
  cfg: AggregatorConfig,
  selfId: string,
  advertised: string,
  wildcard: boolean,
  secret: PeerSecret | null,
  tlsFiles: { cert: Buffer; key: Buffer; ca: Buffer | null } | null,
  log: Logger,
): ClusterMembership {
  const members = cfg.cluster.members.map((entry) => {
    const at = entry.indexOf('=');
    return { id: entry.slice(0, at), address: entry.slice(at + 1) };
  });
  const me = members.find((m) => m.id === selfId);
  if (members.length > 0 && cfg.cluster.dns === '' && !me) {
    throw new OtlpEdgeError(
      AggregatorErrorCodes.CLUSTER_SELF_MISSING,
      `node.id '${selfId}' is not among cluster.members (${members.map((m) => m.id).join(', ')}); list this node as "${selfId}=HOST:PORT" or set node.id to one of them`,
    );
  }
  return new ClusterMembership(
    {
      self: { id: selfId, address: me?.address ?? advertised },
      learnSelfAddress: !me && !cfg.cluster.advertise && wildcard && cfg.cluster.dns !== '',
      members,
      dns: cfg.cluster.dns,
      dnsPort: cfg.grpc.port,
      dnsServer: cfg.cluster.dns_server,
      vnodes: cfg.cluster.vnodes,
      probeIntervalMs: cfg.cluster.probe_interval,
      failureTimeoutMs: cfg.cluster.failure_timeout,
      dnsIntervalMs: cfg.cluster.dns_interval,
      secret,
      tls: tlsFiles && { ...tlsFiles, serverName: cfg.cluster.tls_server_name },
    },
    log,
  );
}
