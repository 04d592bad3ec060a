import { OtlpEdgeError } from '../../protocol/errors.js';
import { AggregatorErrorCodes } from '../errors.js';
import * as grpc from '@grpc/grpc-js';
import type {
  DeviceDetail,
  DeviceQueries,
  DeviceSummary,
  LocalAnswers,
  NodeSummary,
  RollupView,
  SeriesView,
} from '../api/device-queries.js';
import type { DeviceStateStore } from '../state/store.js';
import type { ClusterMembership } from './cluster-membership.js';
import type { Membership } from './membership.js';
import { nanos } from './peer-server.js';

const ms = (ns: number) => ns / 1e6;

function call<T>(client: any, method: string, req: object): Promise<T> {
  return new Promise((resolve, reject) =>
    client[method](
      req,
      new grpc.Metadata(),
      { deadline: Date.now() + 5000 },
      (err: grpc.ServiceError | null, res: T) =>
        err ? reject(ownerUnreachable(`${method} on the owning member failed: ${err.details}`)) : resolve(res),
    ),
  );
}

/** The member that owns a device could not be asked (the API answers 503: try again, or wait for the ring). */
function ownerUnreachable(detail: string): OtlpEdgeError {
  return new OtlpEdgeError(
    AggregatorErrorCodes.API_OWNER_UNREACHABLE,
    `${detail}; its devices are answered again once it is back or has left the ring (cluster.failure_timeout)`,
  );
}
/** The API's answers on a node that is not in a cluster: everything from its own store. */
export function singleNodeQueries(
  store: DeviceStateStore,
  membership: Membership,
  selfId: string,
  local: LocalAnswers,
): DeviceQueries {
  return {
    alerts: async () => ({ alerts: local.alerts(), missing: [] }),
    fleet: async () => ({ ring: membership.view(), summaries: new Map([[selfId, local.summary()]]) }),
    device: async (id) => {
      const d = store.get(id);
      return d && { ...d, owner: membership.owner(id) };
    },
    list: async (opts) => store.list(opts),
    series: async (id, metric, from, to, atLeast) => localSeries(store, id, metric, from, to, atLeast),
    events: async (id, limit) => (store.get(id) ? store.events(id, limit) : undefined),
    ring: () => membership.view(),
    remove: async (id) => ({ nodes: (await store.deleteDevice(id)) ? [selfId] : [], missing: [] }),
  };
}

/**
 * The API's answers in a cluster: a device is answered by its owner (asked over the peer service when that is
 * another node); the device list merges every member's page, ordered by id.
 */
export function clusterQueries(
  cluster: ClusterMembership,
  store: DeviceStateStore,
  local: LocalAnswers,
): DeviceQueries {
  const selfId = cluster.self.id;
  const peer = (id: string) => {
    const c = cluster.clientOf(id);
    if (!c) throw ownerUnreachable(`no connection to ring member '${id}'`);
    return c;
  };
  return {
    async alerts() {
      // Every known member: a member out of the ring may still hold alerts until it hands its devices off.
      const missing: string[] = [];
      const lists = await Promise.all(
        cluster.memberIds().map(async (id) => {
          if (id === selfId) return local.alerts();
          try {
            const r = await call<{ items?: string[] }>(peer(id), 'GetAlerts', {});
            return (r.items ?? []).map((j) => JSON.parse(j) as Record<string, unknown>);
          } catch {
            missing.push(id);
            return [];
          }
        }),
      );
      return { alerts: lists.flat(), missing: missing.sort() };
    },
    async fleet() {
      const ring = cluster.view();
      const summaries = new Map<string, NodeSummary | null>();
      await Promise.all(
        ring.members.map(async (m) => {
          if (m.id === selfId) return summaries.set(m.id, local.summary());
          try {
            summaries.set(m.id, await call<NodeSummary>(peer(m.id), 'GetSummary', {}));
          } catch {
            summaries.set(m.id, null);
          }
        }),
      );
      return { ring, summaries };
    },
    async device(id) {
      const owner = cluster.owner(id);
      if (owner === selfId) {
        const d = store.get(id);
        return d && { ...d, owner };
      }
      const r = await call<{ found: boolean; device?: any }>(peer(owner), 'GetDevice', { deviceId: id });
      if (!r.found || !r.device) return undefined;
      const d = r.device;
      const detail: DeviceDetail = {
        id: d.id,
        online: d.online,
        lastSeen: ms(d.lastSeenUnixNano),
        owner: d.owner,
        latest: Object.fromEntries(
          (d.latest ?? []).map((l: any) => [l.metric, { value: l.value, ts: ms(l.timeUnixNano) }]),
        ),
        counts: {
          received: d.counts?.received ?? 0,
          duplicates: d.counts?.duplicates ?? 0,
          missing: d.counts?.missing ?? 0,
        },
        resource: d.resource && d.resource.length > 0 ? new Uint8Array(d.resource) : null,
      };
      return detail;
    },
    async list(opts) {
      // A member that cannot answer (down but not yet out of the ring) does not fail the page: the others answer
      // and the page names it, so a caller knows the list is partial.
      const missing: string[] = [];
      const pages = await Promise.all(
        cluster.ring.members.map(async (m) => {
          if (m.id === selfId) {
            const p = store.list(opts);
            return { devices: p.devices, more: p.next !== null };
          }
          try {
            const r = await call<{ devices?: any[]; more: boolean }>(peer(m.id), 'GetDevices', {
              online: opts.online,
              limit: opts.limit,
              afterId: opts.cursor ?? '',
              match: opts.match ?? '',
              ...(opts.tenant === undefined ? {} : { tenant: opts.tenant }),
            });
            return {
              devices: (r.devices ?? []).map((d): DeviceSummary => ({
                id: d.id,
                online: d.online,
                lastSeen: ms(d.lastSeenUnixNano),
              })),
              more: r.more,
            };
          } catch {
            missing.push(m.id);
            return { devices: [], more: false };
          }
        }),
      );
      const all = pages.flatMap((p) => p.devices).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const devices = all.slice(0, opts.limit);
      const more = all.length > opts.limit || pages.some((p) => p.more);
      return {
        devices,
        next: more && devices.length > 0 ? devices[devices.length - 1].id : null,
        missing: missing.sort(),
      };
    },
    async remove(id, requestedBy = '') {
      // Every known member, not only the owner: a node may still hold state from before a ring change.
      const nodes: string[] = [];
      const missing: string[] = [];
      if (await store.deleteDevice(id)) nodes.push(selfId);
      await Promise.all(
        cluster
          .memberIds()
          .filter((m) => m !== selfId)
          .map(async (m) => {
            try {
              const r = await call<{ found: boolean }>(peer(m), 'DeleteDevice', { deviceId: id, requestedBy });
              if (r.found) nodes.push(m);
            } catch {
              missing.push(m);
            }
          }),
      );
      return { nodes: nodes.sort(), missing: missing.sort() };
    },
    async events(id, limit) {
      const owner = cluster.owner(id);
      if (owner === selfId) return store.get(id) ? store.events(id, limit) : undefined;
      const r = await call<{ found: boolean; events?: string[] }>(peer(owner), 'GetEvents', { deviceId: id, limit });
      return r.found ? (r.events ?? []).map((j) => JSON.parse(j)) : undefined;
    },
    async series(id, metric, fromMs, toMs, atLeast = 1) {
      const owner = cluster.owner(id);
      if (owner === selfId) return localSeries(store, id, metric, fromMs, toMs, atLeast);
      const r = await call<{ found: boolean; points?: any[]; resolutionMinutes?: number }>(peer(owner), 'GetSeries', {
        deviceId: id,
        metric,
        fromUnixNano: nanos(fromMs),
        toUnixNano: nanos(toMs),
        resolutionMinutes: atLeast,
      });
      if (!r.found) return undefined;
      const points = (r.points ?? []).map((p): RollupView => ({
        start: ms(p.startUnixNano),
        min: p.min,
        max: p.max,
        sum: p.sum,
        count: p.count,
        last: p.last,
      }));
      return { resolutionMin: r.resolutionMinutes || 1, points };
    },
    ring: () => cluster.view(),
  };
}

/** A series this node answers: at the finest tier holding the range (at least `atLeast` minutes). */
async function localSeries(
  store: DeviceStateStore,
  id: string,
  metric: string,
  fromMs: number,
  toMs: number,
  atLeast = 1,
): Promise<SeriesView | undefined> {
  if (!store.get(id)) return undefined;
  const resolutionMin = await store.resolutionFor(id, metric, fromMs, toMs, atLeast);
  return { resolutionMin, points: await store.series(id, metric, fromMs, toMs, resolutionMin) };
}
