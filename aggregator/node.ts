import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { uplinkServiceDefinition } from '../protocol/uplink/service.js';
import { nodeId, type AggregatorConfig } from './config.js';
import { ApiServer, type DeviceQueries } from './api/server.js';
import { SingleNode, type Membership } from './cluster/membership.js';
import { ClusterMembership } from './cluster/cluster.js';
import { ClusterRouter } from './cluster/router.js';
import { clusterQueries } from './cluster/queries.js';
import { peerImplementation } from './cluster/peer-server.js';
import { peerServiceDefinition } from './cluster/peer-service.js';
import { Rebalancer } from './cluster/rebalance.js';
import { OtlpEdgeError } from '../protocol/errors.js';
import type { BatchSink } from './ingest/uplink-service.js';
import { AgentTokens } from './ingest/tokens.js';
import { UplinkIngest } from './ingest/uplink-service.js';
import { AggregatorMetrics } from './ops/metrics.js';
import { DeviceStateStore } from './state/store.js';

/** How often devices are checked for going offline, and expired rollups pruned. */
const SWEEP_MS = 1000;
const PRUNE_MS = 10 * 60_000;

/**
 * One aggregator node: state store, then the gRPC ingest, then the API. Shutdown runs the other way: stop taking
 * batches (they are answered RETRY), let in-flight applies finish, close listeners, close storage.
 */
export class AggregatorNode {
  readonly id: string;
  readonly metrics: AggregatorMetrics;
  private store: DeviceStateStore | null = null;
  private grpcServer: grpc.Server | null = null;
  private ingest: UplinkIngest | null = null;
  private api: ApiServer | null = null;
  private membership: Membership | null = null;
  private cluster: ClusterMembership | null = null;
  private rebalancer: Rebalancer | null = null;
  private timers: NodeJS.Timeout[] = [];
  private stopping: Promise<void> | null = null;
  grpcPort = 0;

  constructor(readonly cfg: AggregatorConfig, private readonly log: Logger) {
    this.id = nodeId(cfg);
    this.metrics = new AggregatorMetrics({
      devices: () => this.store?.deviceCount ?? 0,
      online: () => this.store?.onlineCount ?? 0,
      ringVersion: () => this.membership?.ringInfo().version ?? 0,
    });
  }

  get apiPort(): number {
    return this.api?.port ?? 0;
  }

  async start(): Promise<void> {
    const cfg = this.cfg;
    const tokens = cfg.auth.agent_tokens_file ? AgentTokens.load(cfg.auth.agent_tokens_file) : AgentTokens.open();
    if (tokens.open) this.log.warn('auth.agent_tokens_file is empty: any agent is accepted without a token (development only)');
    const store = (this.store = await DeviceStateStore.open({
      dir: join(cfg.node.data_dir, 'state'), offlineAfterMs: cfg.devices.offline_after, rollupRetentionMs: cfg.devices.rollup_retention,
      onNewBuffer: (agent, was, now) => {
        this.metrics.agentBufferRestarts.inc();
        this.log.warn({ agent, was, now }, 'agent sends from a new buffer (its data directory was wiped or replaced): its batch numbering starts again from 1');
      },
    }));
    const m = this.metrics;
    const wildcard = cfg.grpc.host === '0.0.0.0' || cfg.grpc.host === '::';
    const advertised = cfg.cluster.advertise || `${wildcard ? '127.0.0.1' : cfg.grpc.host}:${cfg.grpc.port}`;
    let membership: Membership;
    let sink: BatchSink = store;
    let cluster: ClusterMembership | null = null;
    if (cfg.cluster.members.length > 0 || cfg.cluster.dns !== '') {
      const members = cfg.cluster.members.map((entry) => {
        const at = entry.indexOf('=');
        return { id: entry.slice(0, at), address: entry.slice(at + 1) };
      });
      const me = members.find((m) => m.id === this.id);
      if (members.length > 0 && cfg.cluster.dns === '' && !me) {
        throw new OtlpEdgeError('OTLPEDGE_CLUSTER_SELF_MISSING', `node.id '${this.id}' is not among cluster.members (${members.map((m) => m.id).join(', ')}); list this node as "${this.id}=HOST:PORT" or set node.id to one of them`);
      }
      cluster = new ClusterMembership({
        self: { id: this.id, address: me?.address ?? advertised }, learnSelfAddress: !me && !cfg.cluster.advertise && wildcard && cfg.cluster.dns !== '', members, dns: cfg.cluster.dns, dnsPort: cfg.grpc.port, dnsServer: cfg.cluster.dns_server,
        vnodes: cfg.cluster.vnodes, probeIntervalMs: cfg.cluster.probe_interval, failureTimeoutMs: cfg.cluster.failure_timeout, dnsIntervalMs: cfg.cluster.dns_interval,
      }, this.log);
      membership = cluster;
      sink = new ClusterRouter(cluster, store, {
        onForward: (points, bytes, ms) => {
          m.forwardedPoints.inc(points);
          m.forwardedBytes.inc(bytes);
          m.forwardLatency.observe(ms / 1000);
        },
      });
    } else {
      membership = new SingleNode({ id: this.id, address: advertised }, cfg.cluster.vnodes);
    }
    this.membership = membership;
    this.cluster = cluster;
    const rebalancer = cluster ? new Rebalancer(cluster, store, this.log, {
      onHandedOff: (n) => m.handoffs.inc({ direction: 'out' }, n),
      onReceived: (n) => m.handoffs.inc({ direction: 'in' }, n),
    }) : null;
    this.rebalancer = rebalancer;

    this.ingest = new UplinkIngest(tokens, sink, () => membership.ringInfo(), this.log, {
      onBatch: (outcome, _agent, points) => {
        m.batches.inc({ outcome });
        if (outcome === 'ok') m.points.inc(points);
      },
      onTiming: (decodeMs, applyMs) => {
        m.decodeSeconds.inc(decodeMs / 1000);
        m.applySeconds.inc(applyMs / 1000);
        m.ingestLatency.observe((decodeMs + applyMs) / 1000);
      },
    });
    const server = (this.grpcServer = new grpc.Server({ 'grpc.max_receive_message_length': 64 << 20 }));
    server.addService(uplinkServiceDefinition as unknown as grpc.ServiceDefinition, this.ingest.implementation as unknown as grpc.UntypedServiceImplementation);
    server.addService(peerServiceDefinition as unknown as grpc.ServiceDefinition, peerImplementation({
      selfId: this.id, ringVersion: () => membership.ringInfo().version, ready: () => !this.stopping, store,
      owner: (id) => membership.owner(id), log: this.log, onForwarded: (n) => m.points.inc(n),
      handoff: rebalancer ? (req) => rebalancer.receive(req) : undefined,
    }) as unknown as grpc.UntypedServiceImplementation);
    const creds = cfg.tls.enabled
      ? grpc.ServerCredentials.createSsl(cfg.tls.ca ? readFileSync(cfg.tls.ca) : null, [{ cert_chain: readFileSync(cfg.tls.cert), private_key: readFileSync(cfg.tls.key) }], false)
      : grpc.ServerCredentials.createInsecure();
    this.grpcPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${cfg.grpc.host}:${cfg.grpc.port}`, creds, (err, port) => (err ? reject(err) : resolve(port))));

    const queries: DeviceQueries = cluster ? clusterQueries(cluster, store) : {
      device: async (id) => {
        const d = store.get(id);
        return d && { ...d, owner: membership.owner(id) };
      },
      list: async (opts) => store.list(opts),
      series: async (id, metric, from, to) => (store.get(id) ? store.series(id, metric, from, to) : undefined),
      ring: () => membership.view(),
    };
    this.api = new ApiServer({ host: cfg.api.host, port: cfg.api.port, registry: m.registry, queries, notReady: () => (this.stopping ? 'shutting down' : null) });
    await this.api.start();

    this.timers.push(setInterval(() => {
      const t = store.sweepOnline();
      for (const id of t.wentOffline) {
        m.offlineTransitions.inc();
        this.log.warn({ event: 'device_offline', device: id, offlineAfterMs: cfg.devices.offline_after }, 'device went offline');
      }
      for (const id of t.wentOnline) this.log.info({ event: 'device_online', device: id }, 'device back online');
    }, SWEEP_MS).unref());
    this.timers.push(setInterval(() => {
      store.pruneExpired(Date.now()).catch((e: Error) => this.log.warn({ err: e.message }, 'rollup pruning failed'));
    }, PRUNE_MS).unref());
    cluster?.start();
    rebalancer?.start();
    this.log.info({ id: this.id, grpc: this.grpcPort, api: this.api.port, tls: cfg.tls.enabled, ring: membership.ringInfo().members.map((x) => x.id) }, 'aggregator started');
  }

  shutdown(): Promise<void> {
    this.stopping ??= this.doShutdown();
    return this.stopping;
  }

  private async doShutdown(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.ingest?.stop();
    this.cluster?.stop();
    this.rebalancer?.stop();
    await this.rebalancer?.settle();
    const server = this.grpcServer;
    if (server) {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 5000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    }
    await this.api?.close();
    await this.store?.close();
    this.log.info('aggregator stopped');
  }
}
