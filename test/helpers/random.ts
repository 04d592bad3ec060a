/**
 * Seeded pseudo-random numbers for reproducible tests: the same mulberry32 the simulated fleet uses, so a failing
 * seed can be replayed (tests print or fix their seed).
 */
export { mulberry32 } from '../../simulators/fleet/signals.js';
