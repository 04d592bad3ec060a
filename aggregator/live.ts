import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { Signal } from '../protocol/otlp/signal.js';
import type { AggregatorConfig } from './config.js';
import type { LocalAnswers, NodeSummary } from './api/device-queries.js';
import type { ClusterMembership } from './cluster/cluster-membership.js';
import type { DeviceData } from './device/types.js';
import type { ExportItem } from './export/queue.js';
import type { DeviceStateStore } from './state/store.js';
import type { SweepResult } from './state/types.js';
import { LiveHub } from './stream/hub.js';
import { StreamServer, StreamTickets } from './stream/server.js';
import { PeerSubscriptions } from './stream/feed.js';
import { Alerts } from './alerts/alerts.js';
import { alertJson } from './alerts/alert.js';

/** Readings per second are measured over this many sweeps. */
const RATE_WINDOW = 10;

/**
 * What people watch on a node: the live stream (its hub, WebSocket server, tickets, and the subscriptions other
 * members hold here), the alerts of the devices it owns, and its own totals for the fleet view. The node feeds it
 * what its state applies and each sweep's online/offline changes.
 */
export class Live {
  readonly hub: LiveHub;
  readonly tickets: StreamTickets;
  readonly subscriptions: PeerSubscriptions;
  stream: StreamServer | null = null;
  private alerts: Alerts | null = null;
  private store: DeviceStateStore | null = null;
  /** store.readingsApplied at each of the last sweeps, oldest first. */
  private readonly readingSamples: number[] = [];

  constructor(
    private readonly cfg: AggregatorConfig,
    private readonly nodeId: string,
    private readonly registry: Registry,
    private readonly log: Logger,
  ) {
    this.hub = new LiveHub(nodeId, (id) => this.store?.tenantOf(id) ?? '');
    this.tickets = new StreamTickets(cfg.api.stream.ticket_ttl);
    const s = cfg.api.stream;
    // Each stream client anywhere in the cluster subscribes here once.
    this.subscriptions = new PeerSubscriptions(this.hub, { queue: s.queue, max: s.max_connections * 16 }, (n) =>
      this.stream?.metrics.dropped.inc(n),
    );
  }

  /** The state store's onDurable: what a batch brought, once durable, goes to the stream. */
  readonly durable = (batch: readonly DeviceData[], source: ExportItem | undefined): void => {
    this.hub.readings(batch);
    if (source?.signal === Signal.LOGS) this.hub.events(source.otlp);
  };

  /** What this node answers from itself, for its own API and for other members. */
  readonly local: LocalAnswers = {
    alerts: () => (this.alerts?.list() ?? []).map((a) => alertJson(a, this.nodeId)),
    summary: (): NodeSummary => {
      const t = this.store?.totals() ?? { devices: 0, online: 0, received: 0, duplicates: 0, missing: 0 };
      const s = this.readingSamples;
      const rate = s.length < 2 ? 0 : (s[s.length - 1] - s[0]) / (s.length - 1);
      return { nodeId: this.nodeId, ...t, readingsPerSecond: rate, alertsFiring: this.alerts?.firingCount ?? 0 };
    },
  };

  /** Starts the WebSocket server and alerting once the node's state and membership are known. */
  start(store: DeviceStateStore, cluster: ClusterMembership | null, owner: (id: string) => string, apiPort: number) {
    const cfg = this.cfg;
    this.store = store;
    this.stream = new StreamServer(cfg.api.stream, this.hub, cluster, this.nodeId, this.registry, this.log);
    this.alerts = new Alerts(cfg.alerts, {
      nodeId: this.nodeId,
      offlineAfterMs: cfg.devices.offline_after,
      owns: (id) => owner(id) === this.nodeId,
      devices: () => this.store?.eachDevice() ?? null,
      pageUrl: cfg.alerts.page_url || `http://${hostname()}:${apiPort}/`,
      registry: this.registry,
      log: this.log,
      onChanges: (changes) => this.hub.alerts(changes),
    });
    this.alerts.start();
  }

  /** One sweep's changes (every second): online/offline messages, and a sample of the readings rate. */
  swept(t: SweepResult): void {
    const store = this.store;
    if (store === null) return;
    const samples = this.readingSamples;
    samples.push(store.readingsApplied);
    if (samples.length > RATE_WINDOW + 1) samples.shift();
    for (const id of t.wentOnline) this.hub.status(id, true, store.get(id)?.lastSeen ?? Date.now());
    for (const id of t.wentOffline) this.hub.status(id, false, store.get(id)?.lastSeen ?? 0);
  }

  /** The stream as the API serves it (null until started). */
  access(): { server: StreamServer; tickets: StreamTickets; maxDevices: number } | null {
    return this.stream && { server: this.stream, tickets: this.tickets, maxDevices: this.cfg.api.stream.max_devices };
  }

  async stop(): Promise<void> {
    await this.alerts?.stop();
    this.stream?.close();
    this.subscriptions.stop();
  }
}
