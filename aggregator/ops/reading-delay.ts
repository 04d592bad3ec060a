import type { Histogram } from 'prom-client';
import type { DeviceData } from '../device/types.js';

/**
 * Observes, for each reading of a batch just made durable, the time since its timestamp (the device's clock): the
 * freshness of state that operators and the benchmarks watch. A reading is a distinct ts per device (readings with a
 * seq are taken from seqTs; those without, from their points' ts). Readings from the future (a device clock ahead)
 * count as 0.
 */
export function observeReadingDelay(h: Histogram, data: readonly DeviceData[], nowMs: number): void {
  for (const d of data) {
    const times = d.seqTs.length > 0 ? d.seqTs : d.ts;
    let last = NaN;
    for (const ts of times) {
      if (ts === last) continue;
      last = ts;
      h.observe(Math.max(0, nowMs - ts) / 1000);
    }
  }
}
