import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ProtoError } from '../../protocol/errors.js';
import { AckStatus } from '../../protocol/uplink/messages.js';
import { decodeRequest, inflateBatch } from '../ingest/batch-decoder.js';
import type { ExportItem } from '../export/queue.js';
import type { DeviceStateStore } from '../state/store.js';
import type { ForwardRequest } from './peer-service.js';
import type { LocalAnswers } from '../api/device-queries.js';
import { KEEP } from '../state/events.js';

/** Epoch ms → decimal nanoseconds (exact to the microsecond), for the peer messages' fixed64 times. */
export function nanos(ms: number): string {
  const whole = Math.floor(ms);
  return (BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1000) * 1000)).toString();
}

type Unary = (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => void;

/**
 * The peer service as one node answers it: probes, forwarded parts (applied with the same (agent, seq)
 * deduplication as uplink batches), and the API's questions about devices this node owns.
 */
export function peerImplementation(deps: {
  selfId: string;
  ringVersion: () => number;
  ready: () => boolean;
  /** This node is leaving the cluster (its probe replies say so). */
  leaving: () => boolean;
  store: DeviceStateStore;
  owner: (deviceId: string) => string;
  log: Logger;
  onForwarded?: (points: number) => void;
  /** Merges handed-off device state (the cluster's Rebalancer); absent on a single node. */
  handoff?: (req: {
    fromNode: string;
    ringVersion: number;
    states?: { deviceId: string; state: Uint8Array }[];
  }) => Promise<{ accepted: number }>;
  /** A device forgotten at another node's request (DELETE /v1/devices/{id}); for the audit log. */
  onDeleted?: (deviceId: string, requestedBy: string, fromPeer: string) => void;
  /** This node's alerts and totals (GET /v1/alerts and /v1/fleet at another node). */
  local: LocalAnswers;
}): Record<string, Unary> {
  const { store } = deps;
  return {
    GetAlerts: (_call, cb) => cb(null, { items: deps.local.alerts().map((a) => JSON.stringify(a)) }),
    GetSummary: (_call, cb) => cb(null, deps.local.summary()),
    Probe: (_call, cb) =>
      cb(null, { nodeId: deps.selfId, ringVersion: deps.ringVersion(), ready: deps.ready(), leaving: deps.leaving() }),
    Forward: (call, cb) => {
      const r = call.request as ForwardRequest;
      let data;
      let source: ExportItem;
      try {
        const raw = inflateBatch(r.signal, r.compression, r.payload);
        data = decodeRequest(r.signal, raw);
        source = {
          signal: r.signal,
          otlp: raw,
          points: -1,
          compressed: { bytes: r.payload, compression: r.compression },
        };
      } catch (e) {
        const reason =
          e instanceof ProtoError
            ? `${e.code}: ${e.message}`
            : `OTLPEDGE_PROTO_MALFORMED: payload could not be decoded: ${(e as Error).message}`;
        return cb(null, { status: AckStatus.REJECTED, reason, ringVersion: deps.ringVersion() });
      }
      // A part for devices this node does not own (the forwarder's ring is ahead of or behind ours) is refused
      // with RETRY rather than applied: state must not grow on a node that is not the owner.
      const stray = data.find((d) => deps.owner(d.deviceId) !== deps.selfId);
      if (stray)
        return cb(null, {
          status: AckStatus.RETRY,
          retryAfterMs: 500,
          reason: `device '${stray.deviceId}' is not owned here under ring ${deps.ringVersion()}`,
          ringVersion: deps.ringVersion(),
        });
      // One owner's part of a split batch: deduplicated by (agent, seq, device-set hash), see ClusterRouter.
      const dedup =
        r.originAgentId && r.originSeq
          ? {
              source: r.originAgentId,
              seq: r.originSeq,
              ackedBelow: r.originAckedBelow,
              bufferId: r.originBufferId,
              part: r.deviceSetHash,
            }
          : null;
      store.apply(data, dedup, source).then(
        (res) => {
          deps.onForwarded?.(res.points);
          cb(null, { status: AckStatus.OK, reason: res.duplicate ? 'duplicate' : '', ringVersion: deps.ringVersion() });
        },
        (err: Error) => {
          deps.log.error(
            { from: r.fromNode, agent: r.originAgentId, seq: r.originSeq, err: err.message },
            'forwarded part could not be stored',
          );
          cb(null, {
            status: AckStatus.RETRY,
            retryAfterMs: 1000,
            reason: err.message,
            ringVersion: deps.ringVersion(),
          });
        },
      );
    },
    Handoff: (call, cb) => {
      if (!deps.handoff) return cb(null, { accepted: 0 });
      deps.handoff(call.request).then(
        (r) => cb(null, r),
        (err: Error) => {
          deps.log.error({ from: call.request.fromNode, err: err.message }, 'handed-off state could not be merged');
          cb(null, { accepted: 0 });
        },
      );
    },
    GetDevice: (call, cb) => {
      const d = store.get(call.request.deviceId);
      if (!d) return cb(null, { found: false });
      cb(null, {
        found: true,
        device: {
          id: d.id,
          online: d.online,
          lastSeenUnixNano: nanos(d.lastSeen),
          owner: deps.selfId,
          latest: Object.entries(d.latest).map(([metric, v]) => ({
            metric,
            value: v.value,
            timeUnixNano: nanos(v.ts),
          })),
          counts: d.counts,
          resource: d.resource ?? Buffer.alloc(0),
        },
      });
    },
    GetDevices: (call, cb) => {
      const q = call.request as { online?: boolean; limit: number; afterId: string; match: string; tenant?: string };
      const page = store.list({
        online: q.online ?? undefined,
        limit: Math.max(1, Math.min(1000, q.limit || 100)),
        cursor: q.afterId || undefined,
        match: q.match || undefined,
        tenant: typeof q.tenant === 'string' ? q.tenant : undefined,
      });
      cb(null, {
        devices: page.devices.map((d) => ({ id: d.id, online: d.online, lastSeenUnixNano: nanos(d.lastSeen) })),
        more: page.next !== null,
      });
    },
    DeleteDevice: (call, cb) => {
      const q = call.request as { deviceId: string; requestedBy: string };
      store.deleteDevice(q.deviceId).then(
        (found) => {
          if (found) deps.onDeleted?.(q.deviceId, q.requestedBy, call.getPeer());
          cb(null, { found });
        },
        (err: Error) => cb(err),
      );
    },
    GetEvents: (call, cb) => {
      const q = call.request as { deviceId: string; limit: number };
      if (!store.get(q.deviceId)) return cb(null, { found: false });
      store.events(q.deviceId, Math.max(1, Math.min(KEEP, q.limit || KEEP))).then(
        (events) => cb(null, { found: true, events: events.map((e) => JSON.stringify(e)) }),
        (err: Error) => cb(err),
      );
    },
    GetSeries: (call, cb) => {
      const q = call.request as {
        deviceId: string;
        metric: string;
        fromUnixNano: number;
        toUnixNano: number;
        resolutionMinutes: number;
      };
      if (!store.get(q.deviceId)) return cb(null, { found: false });
      const [from, to] = [q.fromUnixNano / 1e6, q.toUnixNano / 1e6];
      let resolution = 1;
      store
        .resolutionFor(q.deviceId, q.metric, from, to, q.resolutionMinutes || 1)
        .then((r) => store.series(q.deviceId, q.metric, from, to, (resolution = r)))
        .then(
          (points) =>
            cb(null, {
              found: true,
              resolutionMinutes: resolution,
              points: points.map((p) => ({
                startUnixNano: nanos(p.start),
                min: p.min,
                max: p.max,
                sum: p.sum,
                count: p.count,
                last: p.last,
              })),
            }),
          (err: Error) => cb(err),
        );
    },
  };
}
