import { createMemoryLimiter, type MemoryLimiter } from '../runtime/processors/memory-limiter.js';
import { ingestProcessors } from './ingest/processors.js';
import { AggregatorErrorCodes } from './errors.js';
import * as grpc from '@grpc/grpc-js';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { uplinkServiceDefinition } from '../protocol/uplink/service.js';
import { nodeId, rollupTiers, type AggregatorConfig } from './config.js';
import { ApiServer } from './api/server.js';
import { ApiError } from './api/routes.js';
import { Page } from './api/page.js';
import type { DeviceQueries } from './api/device-queries.js';
import { Live } from './live.js';
import { openWithRetry } from '../runtime/storage/open-with-retry.js';
import { SingleNode, type Membership } from './cluster/membership.js';
import { clusterMembership, type ClusterMembership } from './cluster/cluster-membership.js';
import { ClusterRouter } from './cluster/router.js';
import { clusterQueries, singleNodeQueries } from './cluster/queries.js';
import { peerImplementation } from './cluster/peer-server.js';
import { peerServiceDefinition } from './cluster/peer-service.js';
import { Rebalancer } from './cluster/rebalance.js';
import { Departure } from './cluster/leave.js';
import { RateLimitedLog } from '../runtime/log/rate-limited-log.js';
import type { BatchSink, IngestProcessors } from './ingest/uplink-service.js';
import { callAuthInterceptor } from './ingest/call-auth.js';
import { AuthFiles, loadKeys } from './auth-files.js';
import { UplinkIngest } from './ingest/uplink-service.js';
import { StreamIngest } from './ingest/stream-service.js';
import { observeReadingDelay } from './ops/reading-delay.js';
import { AggregatorMetrics } from './ops/metrics.js';
import { startHousekeeping } from './ops/housekeeping.js';
import { DeviceStateStore } from './state/store.js';
import { Exporters } from './export/exporters.js';
import { OtlpEndpoints } from './ingest/otlp-endpoints.js';

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
  private readonly limiter: MemoryLimiter | null;
  /** What `processors` configures for ingest (the memory limiter watches the whole process). */
  private readonly processors: IngestProcessors;
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
  private departure: Departure | null = null;
  private readonly live: Live;
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
      samplingProbabilities: () => this.processors.sampler?.probabilities() ?? new Map(),
      devices: () => this.store?.deviceCount ?? 0,
      online: () => this.store?.onlineCount ?? 0,
      ringVersion: () => this.membership?.ringInfo().version ?? 0,
    });
    this.limiter = createMemoryLimiter(
      cfg.processors,
      this.metrics.memoryGauges,
      log,
      'uplink batches answered RETRY, OTLP requests 429 / UNAVAILABLE with a retry delay',
    );
    this.auth = new AuthFiles(cfg.auth, log, this.audit, this.metrics);
    this.processors = {
      admission: this.limiter ?? undefined,
      ...ingestProcessors(cfg, this.id, () => this.membership, this.metrics.processorCounters),
    };
    this.live = new Live(cfg, this.id, this.metrics.registry, log);
  }

  get apiPort(): number {
    return this.api?.port ?? 0;
  }

  get otlpHttpPort(): number {
    return this.otlp?.httpPort ?? 0;
  }

  async start(): Promise<void> {
    const cfg = this.cfg;
    this.limiter?.start();
    this.auth.load();
    const quotas = this.processors.quotas;
    if (quotas && !this.auth.agent.tenanted)
      this.log.warn(
        { file: cfg.auth.agent_tokens_file },
        'processors quotas is set but no agent token names a TENANT: no data belongs to a tenant, so no quota applies yet (add a TENANT column and send SIGHUP)',
      );
    const { clustered, secret, tlsFiles } = loadKeys(cfg, this.log);
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
        series: (id, metric, from, to, atLeast) => ready().series(id, metric, from, to, atLeast),
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
      stream: () => this.live.access(),
      leave: (waitMs) => {
        if (this.departure === null)
          throw new ApiError(
            409,
            AggregatorErrorCodes.API_BAD_REQUEST,
            this.started ? 'this node is not in a cluster: it has no one to hand devices to' : 'this node is starting',
          );
        return this.departure.leave(waitMs);
      },
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
          tiers: rollupTiers(cfg),
          maxMetrics: cfg.devices.max_metrics,
          exports: exporters.size > 0 ? exporters.queues : undefined,
          rollups: exporters.rollups,
          onDurable: this.live.durable,
          deviceLimit: quotas ? (tenant) => quotas.deviceLimit(tenant) : undefined,
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
      cluster = clusterMembership(cfg, this.id, advertised, wildcard, secret, tlsFiles, this.log);
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
    if (cluster && rebalancer)
      this.departure = new Departure(cluster, rebalancer, () => ({
        devices: store.deviceCount,
        exportQueued: exporters.queued,
      }));

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
        onMemoryRefused: () => {
          m.memoryRefused.inc({ ingest: 'uplink' });
          m.batches.inc({ outcome: 'retry' });
        },
        onQuotaRefused: (tenant, quota) => {
          m.quotaRefused.inc({ tenant, quota, ingest: 'uplink' });
          m.batches.inc({ outcome: 'retry' });
        },
        onSampled: (tenant, s) => m.countSampled(tenant, s),
      },
      this.processors,
    );
    const streams = (this.streams = new StreamIngest(
      this.ingest,
      this.log,
      m.streamHooks(this.refusalLog),
      // The OTLP of each segment is rebuilt when exporters send it on, and in a cluster: owners are forwarded the
      // original resources (attributes, tenant.id), which data read from columns alone does not keep.
      exporters.size > 0 || clustered,
    ));
    const otlp = (this.otlp = new OtlpEndpoints(
      cfg,
      {
        sink,
        store: () => this.store,
        exportsTake: (signal) => exporters.queues.takes(signal),
        notReady: () => this.notReady(),
        ...this.processors,
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
    server.addService(
      peerServiceDefinition as unknown as grpc.ServiceDefinition,
      {
        ...peerImplementation({
          selfId: this.id,
          ringVersion: () => membership.ringInfo().version,
          ready: () => !this.stopping,
          leaving: () => cluster?.leaving ?? false,
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
          local: this.live.local,
        }),
        Subscribe: this.live.subscriptions.handler,
      } as unknown as grpc.UntypedServiceImplementation,
    );
    const creds = tlsFiles
      ? grpc.ServerCredentials.createSsl(tlsFiles.ca, [{ cert_chain: tlsFiles.cert, private_key: tlsFiles.key }], false)
      : grpc.ServerCredentials.createInsecure();
    this.grpcPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${cfg.grpc.host}:${cfg.grpc.port}`, creds, (err, port) => (err ? reject(err) : resolve(port))),
    );

    queries = cluster
      ? clusterQueries(cluster, store, this.live.local)
      : singleNodeQueries(store, membership, this.id, this.live.local);
    this.timers.push(...startHousekeeping(store, this.live, m, this.log, cfg.devices.offline_after));
    await otlp.start();
    exporters.start(store);
    await exporters
      .warnOrphans(store)
      .catch((e: Error) => this.log.warn({ err: e.message }, 'export queues not listed'));
    cluster?.start();
    rebalancer?.start();
    this.live.start(store, cluster, (id) => membership.owner(id), this.api.port);
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
    if (this.cluster?.leaving) return 'leaving the cluster (its devices go to the other members)';
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
    this.limiter?.stop();
    await this.live.stop();
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
