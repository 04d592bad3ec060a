/**
 * Realistic device values for the simulators and benchmarks: slow sine waves with drift and sensor noise, rounded
 * the way firmware rounds them, monotonic counters, and booleans that change rarely. Deterministic per seed, so a
 * benchmark run and its baseline see the same data.
 */

export function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One simulated device's sensors. `next(tsMs)` returns the flat reading a firmware would publish. */
export class DeviceSignals {
  private readonly rand: () => number;
  private readonly phase: number;
  private readonly base: number;
  private drift = 0;
  private pulses: number;
  private door = false;
  seq = 0;

  constructor(seed: number) {
    this.rand = mulberry32(seed);
    this.phase = this.rand() * Math.PI * 2;
    this.base = 18 + this.rand() * 6;
    this.pulses = Math.floor(this.rand() * 100000);
  }

  /** Metric values at `tsMs`: temperature (°C, 2 decimals), humidity (%, integer), battery (V, 3 decimals),
   *  a pulse counter, and a door switch. */
  values(tsMs: number): { temperature: number; humidity: number; battery: number; pulses: number; door_open: boolean } {
    const r = this.rand;
    this.drift += (r() - 0.5) * 0.01;
    const day = Math.sin(tsMs / 3_600_000 + this.phase);
    this.pulses += Math.floor(r() * 4);
    if (r() < 0.002) this.door = !this.door;
    return {
      temperature: Math.round((this.base + 3 * day + this.drift + (r() - 0.5) * 0.2) * 100) / 100,
      humidity: Math.round(45 + 10 * day + (r() - 0.5) * 2),
      battery: Math.round((3.3 - tsMs / 1e13 + (r() - 0.5) * 0.004) * 1000) / 1000,
      pulses: this.pulses,
      door_open: this.door,
    };
  }
}
