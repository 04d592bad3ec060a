import type { Logger } from 'pino';
import type { Live } from '../live.js';
import type { DeviceStateStore } from '../state/store.js';
import type { AggregatorMetrics } from './metrics.js';

/** How often devices are checked for going offline, and expired rollups rolled down their tiers. */
const SWEEP_MS = 1000;
const PRUNE_MS = 10 * 60_000;

/**
 * A node's background rounds over its devices: every second, who went offline or came back (logged, counted, told
 * to the live stream and alerts); every 10 minutes, rollup compaction (state/tiers.ts). Returns the timers to clear.
 */
export function startHousekeeping(
  store: DeviceStateStore,
  live: Live,
  metrics: AggregatorMetrics,
  log: Logger,
  offlineAfterMs: number,
): NodeJS.Timeout[] {
  const sweep = setInterval(() => {
    const t = store.sweepOnline();
    live.swept(t);
    for (const id of t.wentOffline) {
      metrics.offlineTransitions.inc();
      log.warn({ event: 'device_offline', device: id, offlineAfterMs }, 'device went offline');
    }
    for (const id of t.wentOnline) log.info({ event: 'device_online', device: id }, 'device back online');
  }, SWEEP_MS).unref();
  const prune = setInterval(() => {
    store.pruneExpired(Date.now()).catch((e: Error) => log.warn({ err: e.message }, 'rollup pruning failed'));
  }, PRUNE_MS).unref();
  return [sweep, prune];
}
