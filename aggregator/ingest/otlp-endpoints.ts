import type { Admission } from '../../runtime/processors/memory-limiter.js';
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Signal } from '../../protocol/otlp/signal.js';
import type { AggregatorConfig } from '../config.js';
import type { AggregatorMetrics } from '../ops/metrics.js';
import type { DeviceStateStore } from '../state/store.js';
import { OTLP_GRPC_SIGNALS, otlpExportHandler, otlpServiceDefinition } from './otlp-grpc-service.js';
import { OtlpHttpServer } from './otlp-http-server.js';
import { OtlpIngest } from './otlp-ingest.js';
import type { AgentTokens } from './tokens.js';
import type { BatchSink } from './uplink-service.js';
import type { Quotas } from '../tenants/quotas.js';
import type { LogSampler } from '../tenants/sampling.js';
import type { IngestAttributes } from './attribute-processors.js';

/**
 * A node's standard OTLP ingest: one OtlpIngest behind the OTLP/gRPC services (on the node's gRPC server) and the
 * OTLP/HTTP server (`otlp_http`, when enabled), counted in the node's metrics.
 */
export class OtlpEndpoints {
  private readonly ingest: OtlpIngest;
  private http: OtlpHttpServer | null = null;

  constructor(
    private readonly cfg: AggregatorConfig,
    deps: {
      sink: BatchSink;
      store: () => DeviceStateStore | null;
      exportsTake: (signal: Signal) => boolean;
      notReady: () => string | null;
      admission?: Admission;
      quotas?: Quotas;
      sampler?: LogSampler;
      attributes?: IngestAttributes;
    },
    private readonly tokens: () => AgentTokens,
    private readonly metrics: AggregatorMetrics,
    private readonly log: Logger,
  ) {
    const m = metrics;
    this.ingest = new OtlpIngest(
      deps.sink,
      deps.store,
      deps.exportsTake,
      {
        maxInFlightBytes: cfg.otlp.max_in_flight_bytes,
        notReady: deps.notReady,
        admission: deps.admission,
        tenantOf: (source) => tokens().tenantOf(source),
        quotas: deps.quotas,
        sampler: deps.sampler,
        attributes: deps.attributes,
      },
      log,
      {
        onMemoryRefused: () => m.memoryRefused.inc({ ingest: 'otlp' }),
        onQuotaRefused: (tenant, quota) => m.quotaRefused.inc({ tenant, quota, ingest: 'otlp' }),
        onSampled: (tenant, s) => m.countSampled(tenant, s),
        onAccepted: (signal, toState, toExport, refused) => {
          const name = Signal[signal].toLowerCase();
          if (toState > 0) m.otlpPoints.inc({ signal: name, destination: 'state' }, toState);
          if (toExport > 0) m.otlpPoints.inc({ signal: name, destination: 'export' }, toExport);
          if (refused > 0) m.otlpPoints.inc({ signal: name, destination: 'refused' }, refused);
        },
      },
    );
  }

  get httpPort(): number {
    return this.http?.port ?? 0;
  }

  /** Adds the OTLP/gRPC Export services to the node's gRPC server. */
  addTo(server: grpc.Server): void {
    for (const signal of OTLP_GRPC_SIGNALS)
      server.addService(
        otlpServiceDefinition(signal),
        otlpExportHandler(signal, this.ingest, this.tokens, (name, outcome) =>
          this.metrics.otlpRequests.inc({ transport: 'grpc', signal: name, outcome }),
        ),
      );
  }

  /** Starts OTLP/HTTP (unless otlp_http.enabled is false). */
  async start(): Promise<void> {
    const c = this.cfg.otlp_http;
    if (!c.enabled) return;
    this.http = new OtlpHttpServer(
      { host: c.host, port: c.port, maxBodyBytes: c.max_body_bytes, maxInflatedBytes: c.max_inflated_bytes },
      this.ingest,
      this.tokens,
      this.log,
      (signal, outcome) => this.metrics.otlpRequests.inc({ transport: 'http', signal, outcome }),
    );
    await this.http.start();
  }

  async stop(): Promise<void> {
    await this.http?.stop();
  }
}
