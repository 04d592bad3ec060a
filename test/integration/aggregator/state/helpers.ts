import { DeviceStateStore } from '../../../../aggregator/state/store.js';
import type { DeviceStateOptions } from '../../../../aggregator/state/types.js';
import type { DeviceData } from '../../../../aggregator/device/types.js';
import { tempDir } from '../../../helpers/tmp.js';

export const T0 = 1732280000000; // 20 s into its minute
export const MINUTE = 60_000;
export const minuteStart = (ts: number) => Math.floor(ts / MINUTE) * MINUTE;
export const DAY = 86_400_000;

/** One device's readings `seqs`, one second apart from T0 (seq s at T0 + s s), one metric. */
export function data(deviceId: string, seqs: number[], metric = 'temp', value = (s: number) => 20 + s): DeviceData {
  const ts = seqs.map((s) => T0 + s * 1000);
  return { deviceId, metric: seqs.map(() => metric), ts, value: seqs.map(value), seqTs: ts, seq: seqs };
}

/** Readings of several metrics (points listed metric by metric, as OTLP does). */
export function multi(deviceId: string, seqs: number[], metrics: string[]): DeviceData {
  const d: DeviceData = {
    deviceId,
    metric: [],
    ts: [],
    value: [],
    seqTs: seqs.map((s) => T0 + s * 1000),
    seq: [...seqs],
  };
  metrics.forEach((m, mi) =>
    seqs.forEach((s) => {
      d.metric.push(m);
      d.ts.push(T0 + s * 1000);
      d.value.push(mi * 100 + s);
    }),
  );
  return d;
}

export interface Opened {
  store: DeviceStateStore;
  dir: string;
  clock: { now: number };
  reopen(): Promise<DeviceStateStore>;
}

/** A store in a temp dir with a settable clock (starting an hour after T0); closed when the test ends. */
export async function openStore(
  t: Parameters<typeof tempDir>[0],
  opts: {
    retentionMs?: number;
    sync?: boolean;
    onNewBuffer?: DeviceStateOptions['onNewBuffer'];
    tiers?: DeviceStateOptions['tiers'];
  } = {},
): Promise<Opened> {
  const dir = tempDir(t);
  const clock = { now: T0 + 3_600_000 };
  const open = () =>
    DeviceStateStore.open({
      dir,
      offlineAfterMs: 60_000,
      rollupRetentionMs: opts.retentionMs ?? 7 * DAY,
      sync: opts.sync,
      now: () => clock.now,
      onNewBuffer: opts.onNewBuffer,
      tiers: opts.tiers,
    });
  const o: Opened = {
    store: await open(),
    dir,
    clock,
    async reopen() {
      await o.store.close();
      o.store = await open();
      return o.store;
    },
  };
  t.after(() => o.store.close());
  return o;
}
