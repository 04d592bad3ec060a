import type { Logger } from 'pino';
import type { CircularBuffer } from '../buffer/circular-buffer.js';
import type { StoredBatch } from '../buffer/record.js';
import type { AgentConfig } from '../config.js';
import type { AgentMetrics } from '../ops/metrics.js';
import { GrpcUplinkTransport } from './grpc-transport.js';
import { OtlpHttpTransport } from './http-transport.js';
import { AgentRing } from './ring.js';
import { UplinkSender } from './sender.js';

const pointsIn = (batches: readonly StoredBatch[]) => batches.reduce((n, b) => n + b.points, 0);

/** The uplink of uplink.protocol and, for the uplink protocol, the aggregators' ring; null when uplink.endpoints is
 *  empty (store only). */
export function createUplink(
  cfg: AgentConfig,
  agentId: string,
  buffer: CircularBuffer,
  m: AgentMetrics,
  log: Logger,
): { sender: UplinkSender; ring: AgentRing | null } | null {
  const u = cfg.uplink;
  if (u.endpoints.length === 0) {
    log.warn('uplink.endpoints is empty: batches are stored but not sent anywhere');
    return null;
  }
  let transport;
  let ring: AgentRing | null = null;
  if (u.protocol === 'otlp_http') transport = new OtlpHttpTransport({ endpoint: u.endpoints[0], token: u.token });
  else {
    const grpcTransport = new GrpcUplinkTransport({
      agentId,
      endpoints: u.endpoints,
      token: u.token,
      tls: { enabled: u.tls.enabled, ca: u.tls.ca, insecureSkipVerify: u.tls.insecure_skip_verify },
      lowWater: () => buffer.lowWater(),
      bufferId: buffer.stats().bufferId,
      onStreamRefused: (address, reason) => {
        m.uplinkStreamRefusals.inc();
        log.warn({ aggregator: address }, reason);
      },
    });
    // Ring-aware: learn the aggregators' ring and store one batch per owner (refreshed when an ack disagrees).
    ring = new AgentRing(() => grpcTransport.getRing(), log);
    void ring.refresh();
    transport = grpcTransport;
  }
  const sender = new UplinkSender(
    buffer,
    transport,
    {
      maxInFlight: u.max_in_flight,
      maxBytesPerSecond: u.max_bytes_per_second,
      sendTimeoutMs: u.timeout,
      maxDelayMs: u.max_delay,
    },
    log,
    {
      onRingVersion: (v) => ring?.noteVersion(v),
      onSent: (batches) => {
        m.uplinkRequests.inc({ outcome: 'sent' });
        m.uplinkBatches.inc({ outcome: 'sent' }, batches.length);
        m.uplinkPoints.inc({ outcome: 'sent' }, pointsIn(batches));
        m.uplinkBatchesPerRequest.observe(batches.length);
      },
      onResult: (batches, r, ms, wireBytes) => {
        m.uplinkRequests.inc({ outcome: r.kind });
        m.uplinkBatches.inc({ outcome: r.kind }, batches.length);
        m.uplinkLatency.observe(ms / 1000);
        m.uplinkBytes.inc({ outcome: 'sent' }, wireBytes);
        if (r.kind === 'ok') {
          const rejected = new Set((r.rejected ?? []).map((x) => x.seq));
          m.uplinkPoints.inc({ outcome: 'ok' }, pointsIn(batches.filter((b) => !rejected.has(b.seq))));
          if (rejected.size > 0)
            m.uplinkPoints.inc({ outcome: 'rejected' }, pointsIn(batches.filter((b) => rejected.has(b.seq))));
          m.uplinkBytes.inc({ outcome: 'ok' }, wireBytes);
        } else if (r.kind === 'rejected') m.uplinkPoints.inc({ outcome: 'rejected' }, pointsIn(batches));
      },
    },
  );
  return { sender, ring };
}
