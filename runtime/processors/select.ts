import { globTest } from '../../protocol/glob.js';
import { matches } from '../../protocol/mqtt/frames.js';
import type { SelectConfig } from './spec.js';

/** What a processor does to a device's message: nothing, every record, or only the points of chosen metrics. */
export const enum Selected {
  NONE = 0,
  ALL = 1,
  METRICS = 2,
}

/** Entries a per-device cache holds before it starts over (an answer never changes; the bound is on memory). */
const CACHE_ENTRIES = 50_000;

type Test = (s: string) => boolean;

const anyOf =
  (tests: Test[]): Test =>
  (s) =>
    tests.some((t) => t(s));

/**
 * A processor's `include` and `exclude`: the data it applies to. Every criterion given must match (devices and topics
 * and metrics); within one criterion any entry may. Data is excluded when every criterion `exclude` gives matches. The
 * answer per (device, topic) is cached, so the hot path pays one Map lookup per message.
 */
export class Selector {
  private readonly inDevice: Test | null;
  private readonly inTopic: Test | null;
  private readonly inMetric: Test | null;
  private readonly exDevice: Test | null;
  private readonly exTopic: Test | null;
  private readonly exMetric: Test | null;
  private readonly excludes: boolean;
  private readonly cache = new Map<string, Selected>();

  constructor(include: SelectConfig, exclude: SelectConfig) {
    const globs = (l: readonly string[]) => (l.length === 0 ? null : anyOf(l.map(globTest)));
    const filters = (l: readonly string[]) =>
      l.length === 0
        ? null
        : anyOf(
            l.map((f) => {
              const levels = f.split('/');
              return (topic: string) => matches(levels, topic.split('/'));
            }),
          );
    this.inDevice = globs(include.devices);
    this.inTopic = filters(include.topics);
    this.inMetric = globs(include.metrics);
    this.exDevice = globs(exclude.devices);
    this.exTopic = filters(exclude.topics);
    this.exMetric = globs(exclude.metrics);
    this.excludes = this.exDevice !== null || this.exTopic !== null || this.exMetric !== null;
  }

  /** Whether the selector restricts by metric name (a reading may then be split). */
  get byMetric(): boolean {
    return this.inMetric !== null || this.exMetric !== null;
  }

  /** Whether `include` takes every metric (a processor choosing by metrics leaves events alone otherwise). */
  get allMetrics(): boolean {
    return this.inMetric === null;
  }

  /** What applies to a message of `deviceId` on `topic` ('' where there are no topics). */
  select(deviceId: string, topic: string): Selected {
    // A device data topic names its device, so the topic alone is the key (no string built per message); a
    // device's Resource (no topic) is asked rarely, as the encoder keeps its bytes.
    const key = topic === '' ? `\u0000${deviceId}` : topic;
    let s = this.cache.get(key);
    if (s === undefined) {
      if (this.cache.size >= CACHE_ENTRIES) this.cache.clear();
      s = this.decide(deviceId, topic);
      this.cache.set(key, s);
    }
    return s;
  }

  /** Whether `metric`'s points are chosen, for a message `select` answered METRICS for. */
  metric(deviceId: string, topic: string, metric: string): boolean {
    if (this.inMetric !== null && !this.inMetric(metric)) return false;
    return !(this.excludes && this.excludedPlace(deviceId, topic) && (this.exMetric === null || this.exMetric(metric)));
  }

  private decide(deviceId: string, topic: string): Selected {
    if (this.inDevice !== null && !this.inDevice(deviceId)) return Selected.NONE;
    if (this.inTopic !== null && (topic === '' || !this.inTopic(topic))) return Selected.NONE;
    if (this.byMetric) return Selected.METRICS;
    return this.excludes && this.excludedPlace(deviceId, topic) ? Selected.NONE : Selected.ALL;
  }

  /** Whether exclude's device and topic criteria (those given) all match. */
  private excludedPlace(deviceId: string, topic: string): boolean {
    if (this.exDevice !== null && !this.exDevice(deviceId)) return false;
    if (this.exTopic !== null && (topic === '' || !this.exTopic(topic))) return false;
    return true;
  }
}
