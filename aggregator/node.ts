import { AggregatorErrorCodes } from './errors.js';
import * as grpc from '@grpc/grpc-js';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { uplinkServiceDefinition } from '../protocol/uplink/service.js';
import { nodeId, type AggregatorConfig } from './config.js';
import { ApiServer } from './api/server.js';
import { ApiError } from './api/routes.js';
import { Page } from './api/page.js';
import type { DeviceQueries, LocalAnswers, NodeSummary } from './api/device-queries.js';
import { openWithRetry } from '../runtime/storage/open-with-retry.js';
import { SingleNode, type Membership } from './cluster/membership.js';
import { ClusterMembership } from './cluster/cluster-membership.js';
import { ClusterRouter } from './cluster/router.js';
import { clusterQueries, singleNodeQueries } from './cluster/queries.js';
import { peerImplementation } from './cluster/peer-server.js';
import { peerServiceDefinition } from './cluster/peer-service.js';
import { Rebalancer } from './cluster/rebalance.js';
import { OtlpEdgeError } from '../protocol/errors.js';
import { RateLimitedLog } from '../runtime/log/rate-limited-log.js';
import type { BatchSink } from './ingest/uplink-service.js';
import { callAuthInterceptor } from './ingest/call-auth.js';
import { AuthFiles } from './auth-files.js';
import { PeerSecret } from './cluster/peer-auth.js';
import { UplinkIngest } from './ingest/uplink-service.js';
import { StreamIngest } from './ingest/stream-service.js';
import { observeReadingDelay } from './ops/reading-delay.js';
import { AggregatorMetrics } from './ops/metrics.js';
import { DeviceStateStore } from './state/store.js';
import { Exporters } from './export/exporters.js';
import { OtlpEndpoints } from './ingest/otlp-endpoints.js';
import { Signal } from '../protocol/otlp/signal.js';
import { LiveHub } from './stream/hub.js';
import { StreamServer, StreamTickets } from './stream/server.js';
import { PeerSubscriptions } from './stream/feed.js';
import { Alerts } from './alerts/alerts.js';
import { alertJson } from './alerts/alert.js';

/** How often devices are checked for going offline, and expired rollups pruned. */
const SWEEP_MS = 1000;
const PRUNE_MS = 10 * 60_000;
/** Readings per second are measured over this many sweeps. */
const RATE_WINDOW = 10;
/**
 * Largest gRPC message taken in (checked on the frame header, before the message is buffered): an agent's request
 * is at most a few MB (uplink batches of 5,000 points are ~20-200 KB compressed), a handoff chunk a few MB.
 */
export const MAX_GRPC_MESSAGE_BYTES = 16 << 20;

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
  private streams: StreamIngest | null = null;
  private api: ApiServer | null = null;
  private otlp: OtlpEndpoints | null = null;
  private exporters: Exporters | null = null;
  private membership: Membership | null = null;
  private cluster: ClusterMembership | null = null;
  private rebalancer: Rebalancer | null = null;
  private readonly hub: LiveHub;
  private stream: StreamServer | null = null;
  private tickets: StreamTickets;
  private peerSubscriptions: PeerSubscriptions | null = null;
  private alerts: Alerts | null = null;
  /** store.readingsApplied at each of the last sweeps, oldest first. */
  private readonly readingSamples: number[] = [];
  private timers: NodeJS.Timeout[] = [];
  private stopping: Promise<void> | null = null;
  /** start() has finished: gRPC listens and the cluster runs. */
  private started = false;
  /** Why the state store could not be opened yet, while retrying. */
  private openFailure: string | null = null;
  private readonly auth: AuthFiles;
  private readonly audit: Logger;
  private readonly refusalLog: RateLimitedLog;
  grpcPort = 0;

  constructor(
    readonly cfg: AggregatorConfig,
    private readonly log: Logger,
    audit?: Logger,
  ) {
    // The audit log: its own logger name, one line per refused API request, token reload and admin action.
    this.audit = audit ?? log.child({ name: 'otlp-edge-aggregator.audit' });
    this.refusalLog = new RateLimitedLog(log);
    this.id = nodeId(cfg);
    this.metrics = new AggregatorMetrics({
      devices: () => this.store?.deviceCount ?? 0,
      online: () => this.store?.onlineCount ?? 0,
      ringVersion: () => this.membership?.ringInfo().version ?? 0,
    });
    this.auth = new AuthFiles(cfg.auth, log, this.audit, this.metrics);
    this.hub = new LiveHub(this.id);
    this.tickets = new StreamTickets(cfg.api.stream.ticket_ttl);
  }

  /** What this node answers from itself, for its own API and for other members. */
  private readonly local: LocalAnswers = {
    alerts: () => (this.alerts?.list() ?? []).map((a) => alertJson(a, this.id)),
    summary: (): NodeSummary => {
      const t = this.store?.totals() ?? { devices: 0, online: 0, received: 0, duplicates: 0, missing: 0 };
      const s = this.readingSamples;
      const rate = s.length < 2 ? 0 : (s[s.length - 1] - s[0]) / (s.length - 1);
      return { nodeId: this.id, ...t, readingsPerSecond: rate, alertsFiring: this.alerts?.firingCount ?? 0 };
    },
  };

  get apiPort(): number {
    return this.api?.port ?? 0;
  }

  get otlpHttpPort(): number {
    return this.otlp?.httpPort ?? 0;
  }

  async start(): Promise<void> {
    const cfg = this.cfg;
    this.auth.load();
    const clustered = cfg.cluster.members.length > 0 || cfg.cluster.dns !== '';
    const secret = cfg.cluster.secret_file ? PeerSecret.load(cfg.cluster.secret_file) : null;
    for (const [key, path] of [
      ['cluster.secret_file', cfg.cluster.secret_file],
      ['auth.agent_tokens_file', cfg.auth.agent_tokens_file],
      ['auth.api_tokens_file', cfg.auth.api_tokens_file],
    ]) {
      // A careless mode leaks every credential on the host: say so (the node still starts; the file is the operator's).
      if (path !== '' && (statSync(path).mode & 0o077) !== 0) {
        this.log.warn({ key, path }, `${key} is readable by other users: chmod 600 it (it holds credentials)`);
      }
    }
    if (clustered && secret === null)
      this.log.warn(
        'cluster.secret_file is empty: any client that reaches the gRPC port may call the peer service (development only)',
      );
    const tlsFiles = cfg.tls.enabled
      ? {
          cert: readFileSync(cfg.tls.cert),
          key: readFileSync(cfg.tls.key),
          ca: cfg.tls.ca ? readFileSync(cfg.tls.ca) : null,
        }
      : null;
    // The API (with /metrics and /readyz) listens first: while the state store cannot be opened (a full disk), the
    // node stays up, says why, and keeps trying. Device queries answer 503 until the store is open.
    let queries: DeviceQueries | null = null;
    const ready = (): DeviceQueries => {
      if (queries === null)
        throw new ApiError(
          503,
          AggregatorErrorCodes.API_NOT_READY,
          `this node is not ready: ${this.notReady() ?? 'starting'}`,
        );
      return queries;
    };
    this.api = new ApiServer({
      host: cfg.api.host,
      port: cfg.api.port,
      registry: this.metrics.registry,
      notReady: () => this.notReady(),
      queries: {
        device: (id) => ready().device(id),
        list: (o) => ready().list(o),
        series: (id, metric, from, to) => ready().series(id, metric, from, to),
        events: (id, limit) => ready().events(id, limit),
        ring: () => ready().ring(),
        remove: (id, by) => ready().remove(id, by),
        alerts: () => ready().alerts(),
        fleet: () => ready().fleet(),
      },
      tokens: () => this.auth.api,
      audit: this.audit,
      onRefused: (status) => this.metrics.apiRefused.inc({ status: String(status) }),
      page: cfg.api.page ? new Page() : null,
      stream: () =>
        this.stream && { server: this.stream, tickets: this.tickets, maxDevices: cfg.api.stream.max_devices },
    });
    await this.api.start();
    const exporters = (this.exporters = new Exporters(cfg, this.metrics.registry, this.log));
    const stateDir = join(cfg.node.data_dir, 'state');
    const store = (this.store = await openWithRetry(
      stateDir,
      () =>
        DeviceStateStore.open({
          dir: stateDir,
          offlineAfterMs: cfg.devices.offline_after,
          rollupRetentionMs: cfg.devices.rollup_retention,
          maxMetrics: cfg.devices.max_metrics,
          exports: exporters.size > 0 ? exporters.queues : undefined,
          rollups: exporters.rollups,
          onDurable: (batch, source) => {
            this.hub.readings(batch);
            if (source?.signal === Signal.LOGS) this.hub.events(source.otlp);
          },
          ...this.metrics.stateHooks(this.log, this.refusalLog, cfg.devices.max_metrics),
        }),
      {
        stopped: () => this.stopping !== null,
        onFailure: (err, detail, retryInMs) => {
          this.openFailure = detail;
          this.metrics.stateOpenFailures.inc();
          this.log.error({ err: err.message, retryInMs }, `the state store cannot be opened; retrying: ${detail}`);
        },
      },
    ));
    this.openFailure = null;
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
        throw new OtlpEdgeError(
          AggregatorErrorCodes.CLUSTER_SELF_MISSING,
          `node.id '${this.id}' is not among cluster.members (${members.map((m) => m.id).join(', ')}); list this node as "${this.id}=HOST:PORT" or set node.id to one of them`,
        );
      }
      cluster = new ClusterMembership(
        {
          self: { id: this.id, address: me?.address ?? advertised },
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
        this.log,
      );
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
    const rebalancer = cluster
      ? new Rebalancer(cluster, store, this.log, {
          onHandedOff: (n) => m.handoffs.inc({ direction: 'out' }, n),
          onReceived: (n) => m.handoffs.inc({ direction: 'in' }, n),
        })
      : null;
    this.rebalancer = rebalancer;

    this.ingest = new UplinkIngest(
      () => this.auth.agent,
      sink,
      () => membership.ringInfo(),
      this.log,
      {
        onBatch: (outcome, _agent, points) => {
          m.batches.inc({ outcome });
          if (outcome === 'ok') m.points.inc(points);
        },
        onTiming: (decodeMs, applyMs) => {
          m.decodeSeconds.inc(decodeMs / 1000);
          m.applySeconds.inc(applyMs / 1000);
          m.ingestLatency.observe((decodeMs + applyMs) / 1000);
        },
        onApplied: (data, now) => observeReadingDelay(m.readingDelay, data, now),
      },
    );
    const streams = (this.streams = new StreamIngest(
      this.ingest,
      this.log,
      m.streamHooks(this.refusalLog),
      exporters.size > 0,
    ));
    const otlp = (this.otlp = new OtlpEndpoints(
      cfg,
      {
        sink,
        store: () => this.store,
        exportsTake: (signal) => exporters.queues.takes(signal),
        notReady: () => this.notReady(),
      },
      () => this.auth.agent,
      m,
      this.log,
    ));
    const server = (this.grpcServer = new grpc.Server({
      'grpc.max_receive_message_length': MAX_GRPC_MESSAGE_BYTES,
      interceptors: [
        callAuthInterceptor({
          tokens: () => this.auth.agent,
          peerSecret: secret,
          clustered,
          onRefused: (service, reason, detail, method, peer) => {
            m.callsRefused.inc({ service, reason });
            if (method.endsWith('/Send') || method.endsWith('/Stream')) m.batches.inc({ outcome: 'unauthenticated' });
            this.refusalLog.warn(
              `grpc:${service}:${reason}`,
              { service, reason, method, peer },
              `gRPC call refused: ${detail}`,
            );
          },
        }),
      ],
    }));
    server.addService(
      uplinkServiceDefinition as unknown as grpc.ServiceDefinition,
      { ...this.ingest.implementation, Stream: streams.handler } as unknown as grpc.UntypedServiceImplementation,
    );
    otlp.addTo(server);
    const streamCfg = cfg.api.stream;
    const subscriptions = (this.peerSubscriptions = new PeerSubscriptions(
      this.hub,
      // Each stream client anywhere in the cluster subscribes here once.
      { queue: streamCfg.queue, max: streamCfg.max_connections * 16 },
      () => this.stream?.metrics.dropped.inc(),
    ));
    server.addService(
      peerServiceDefinition as unknown as grpc.ServiceDefinition,
      {
        ...peerImplementation({
          selfId: this.id,
          ringVersion: () => membership.ringInfo().version,
          ready: () => !this.stopping,
          store,
          owner: (id) => membership.owner(id),
          log: this.log,
          onForwarded: (n) => m.points.inc(n),
          handoff: rebalancer ? (req) => rebalancer.receive(req) : undefined,
          onDeleted: (device, requestedBy, from) =>
            this.audit.info(
              { audit: 'admin', action: 'delete_device', device, token: requestedBy, via: from, outcome: 'deleted' },
              'admin action (requested at another node)',
            ),
          local: this.local,
        }),
        Subscribe: subscriptions.handler,
      } as unknown as grpc.UntypedServiceImplementation,
    );
    const creds = tlsFiles
      ? grpc.ServerCredentials.createSsl(tlsFiles.ca, [{ cert_chain: tlsFiles.cert, private_key: tlsFiles.key }], false)
      : grpc.ServerCredentials.createInsecure();
    this.grpcPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${cfg.grpc.host}:${cfg.grpc.port}`, creds, (err, port) => (err ? reject(err) : resolve(port))),
    );

    queries = cluster
      ? clusterQueries(cluster, store, this.local)
      : singleNodeQueries(store, membership, this.id, this.local);
    this.stream = new StreamServer(streamCfg, this.hub, cluster, this.id, m.registry, this.log);
    const alerts = (this.alerts = new Alerts(cfg.alerts, {
      nodeId: this.id,
      offlineAfterMs: cfg.devices.offline_after,
      owns: (id) => membership.owner(id) === this.id,
      devices: () => this.store?.eachDevice() ?? null,
      pageUrl: cfg.alerts.page_url || `http://${hostname()}:${this.api.port}/`,
      registry: m.registry,
      log: this.log,
      onChanges: (changes) => this.hub.alerts(changes),
    }));

    this.timers.push(
      setInterval(() => {
        const t = store.sweepOnline();
        const samples = this.readingSamples;
        samples.push(store.readingsApplied);
        if (samples.length > RATE_WINDOW + 1) samples.shift();
        for (const id of t.wentOnline) this.hub.status(id, true, store.get(id)?.lastSeen ?? Date.now());
        for (const id of t.wentOffline) {
          this.hub.status(id, false, store.get(id)?.lastSeen ?? 0);
          m.offlineTransitions.inc();
          this.log.warn(
            { event: 'device_offline', device: id, offlineAfterMs: cfg.devices.offline_after },
            'device went offline',
          );
        }
        for (const id of t.wentOnline) this.log.info({ event: 'device_online', device: id }, 'device back online');
      }, SWEEP_MS).unref(),
    );
    this.timers.push(
      setInterval(() => {
        store.pruneExpired(Date.now()).catch((e: Error) => this.log.warn({ err: e.message }, 'rollup pruning failed'));
      }, PRUNE_MS).unref(),
    );
    await otlp.start();
    exporters.start(store);
    await exporters
      .warnOrphans(store)
      .catch((e: Error) => this.log.warn({ err: e.message }, 'export queues not listed'));
    cluster?.start();
    rebalancer?.start();
    alerts.start();
    this.started = true;
    this.log.info(
      {
        id: this.id,
        grpc: this.grpcPort,
        api: this.api.port,
        otlpHttp: this.otlpHttpPort,
        exporters: exporters.size,
        tls: cfg.tls.enabled,
        ring: membership.ringInfo().members.map((x) => x.id),
      },
      'aggregator started',
    );
  }

  private notReady(): string | null {
    if (this.stopping) return 'shutting down';
    if (this.store === null) return `state store not open${this.openFailure ? `: ${this.openFailure}` : ''}`;
    if (!this.started) return 'starting (gRPC not listening yet)';
    return this.store.unhealthy();
  }

  /** SIGHUP: reads the token files again (see AuthFiles). */
  reload(): void {
    this.auth.reload();
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await this.alerts?.stop();
    this.stream?.close();
    this.peerSubscriptions?.stop();
    this.ingest?.stop();
    await this.streams?.stop();
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
    await this.otlp?.stop();
    await this.api?.stop();
    await this.exporters?.stop();
    await this.store?.close();
    this.log.info('aggregator stopped');
  }
}
