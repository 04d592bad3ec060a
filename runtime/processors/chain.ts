import type { ConfigProblem } from '../../protocol/config/schema.js';
import type { AnyValue, DeviceEvent, Reading } from '../../protocol/payload/types.js';
import { checkAttributes, compileAttributes, type AttrList } from './attributes.js';
import { checkRedaction, Redactor } from './redaction.js';
import { checkMemoryLimiter } from './memory-limiter.js';
import { Selected, Selector } from './select.js';
import type { AttributesConfig, MemoryLimiterConfig, RedactionConfig } from './spec.js';
import type { AttributeHooks } from '../../protocol/otlp/attribute-rewrite.js';

/** One entry of a `processors:` list, as the schema types it. */
export type ProcessorEntry =
  | { readonly kind: 'attributes'; readonly config: AttributesConfig }
  | { readonly kind: 'redaction'; readonly config: RedactionConfig }
  | { readonly kind: string; readonly config: unknown };

/**
 * Where processors count what they do. Each returns the incrementer of one counter, asked once per label pair and
 * then called per record, so counting costs a function call on the hot path.
 */
export interface ProcessorCounters {
  /** An attributes action changed something; `processor` is its config path, e.g. `processors[1]`. */
  applied(processor: string, action: string): () => void;
  /** A redaction detector (or a blocked key: `key`) found something that was replaced. */
  redacted(processor: string, detector: string): () => void;
}

/** `counter(label)`'s incrementer per label, made on first use. */
function incrementers(counter: (label: string) => () => void): (label: string) => () => void {
  const made = new Map<string, () => void>();
  return (label) => {
    let inc = made.get(label);
    if (inc === undefined) made.set(label, (inc = counter(label)));
    return inc;
  };
}

/** What one record processor does, each part optional. */
interface Stage {
  select: Selector;
  point: ((attrs: AttrList) => AttrList) | null;
  /** `point` for reading attributes (text only), remembered for the last list it was given (see `remembered`). */
  readingPoint: ((attrs: AttrList) => AttrList) | null;
  resource: ((attrs: AttrList) => AttrList) | null;
  body: ((v: AnyValue) => AnyValue | undefined) | null;
}

const NONE: AttrList = [];

/** Problems of a `processors:` list (each processor's cross-key rules, and the list's), with key paths. */
export function checkProcessors(
  list: readonly ProcessorEntry[],
  path: string,
  opts: { topics: boolean },
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  let limiter = -1;
  list.forEach((p, i) => {
    const at = `${path}[${i}].${p.kind}`;
    if (p.kind === 'memory_limiter') {
      if (limiter >= 0)
        problems.push({ path: `${path}[${i}]`, message: `a second memory_limiter (${path}[${limiter}] is one)` });
      limiter = i;
      problems.push(...checkMemoryLimiter(p.config as MemoryLimiterConfig, at));
      return;
    }
    if (p.kind === 'attributes') problems.push(...checkAttributes(p.config as AttributesConfig, at));
    else if (p.kind === 'redaction') problems.push(...checkRedaction(p.config as RedactionConfig, at));
    else return;
    const c = p.config as AttributesConfig | RedactionConfig;
    if (!opts.topics)
      for (const sel of ['include', 'exclude'] as const)
        if (c[sel].topics.length > 0)
          problems.push({
            path: `${at}.${sel}.topics`,
            message: 'data here has no MQTT topic; select by devices or metrics',
          });
  });
  return problems;
}

/**
 * The record processors (attributes, redaction) of a checked `processors:` list, in order, applied to what the
 * payload decoder produced: reading and event attributes, event bodies, and each device's Resource. Records are
 * changed in place and attribute lists copied only when a processor changes them; with no processor configured,
 * `RecordProcessors.build` returns null and the pipeline does not call it at all.
 */
export class RecordProcessors {
  private constructor(private readonly stages: Stage[]) {}

  static build(list: readonly ProcessorEntry[], path: string, counters: ProcessorCounters): RecordProcessors | null {
    const stages: Stage[] = [];
    list.forEach((p, i) => {
      const name = `${path}[${i}]`;
      const tally = new Tally();
      let stage: Omit<Stage, 'readingPoint'> | null = null;
      if (p.kind === 'attributes') {
        const c = p.config as AttributesConfig;
        const inc = incrementers((action) => counters.applied(name, action));
        const compiled = compileAttributes(c, (action) => tally.count(inc(action)));
        stage = { select: new Selector(c.include, c.exclude), ...compiled, body: null };
      } else if (p.kind === 'redaction') {
        const c = p.config as RedactionConfig;
        const inc = incrementers((detector) => counters.redacted(name, detector));
        const r = new Redactor(c, (detector) => tally.count(inc(detector)));
        const attrs = (a: AttrList) => r.attributes(a);
        stage = {
          select: new Selector(c.include, c.exclude),
          point: attrs,
          resource: attrs,
          body: c.bodies ? (v) => r.value(v) : null,
        };
      }
      if (stage === null) return;
      const point = stage.point;
      stages.push({ ...stage, readingPoint: point === null ? null : remembered((a) => asText(point(a)), tally) });
    });
    return stages.length === 0 ? null : new RecordProcessors(stages);
  }

  /**
   * The processors as hooks over OTLP requests (protocol/otlp/attribute-rewrite.ts), for what the aggregator takes
   * in: the same selection and actions as on readings — Resources of selected devices, data points of selected
   * devices and metrics, log record attributes and bodies of selected devices.
   */
  otlpHooks(): AttributeHooks {
    const stages = this.stages;
    const hooks: AttributeHooks = {};
    if (stages.some((s) => s.resource !== null)) hooks.resource = (id, attrs) => this.resource(id, attrs);
    if (stages.some((s) => s.point !== null))
      hooks.point = (id, metric, attrs) => {
        for (const s of stages) {
          if (s.point === null) continue;
          const sel = s.select.select(id, '');
          if (sel === Selected.ALL || (sel === Selected.METRICS && s.select.metric(id, '', metric)))
            attrs = s.point(attrs);
        }
        return attrs;
      };
    if (stages.some((s) => s.point !== null || s.body !== null))
      hooks.log = (id, rec) => {
        let out = rec;
        for (const s of stages) {
          const sel = s.select.select(id, '');
          if (sel === Selected.NONE || (sel === Selected.METRICS && !s.select.allMetrics)) continue;
          if (s.point !== null) {
            const a = s.point(out.attrs);
            if (a !== out.attrs) out = { ...out, attrs: a };
          }
          if (s.body !== null && out.body !== undefined) {
            const b = s.body(out.body);
            if (b !== out.body) out = { ...out, body: b === undefined ? '' : b };
          }
        }
        return out;
      };
    return hooks;
  }

  /** Whether any processor changes Resources (the encoder then keeps one per device). */
  get changesResources(): boolean {
    return this.stages.some((s) => s.resource !== null);
  }

  /** A device's Resource attributes after the processors, from the gateway's `base` (without device.id). */
  resource(deviceId: string, base: AttrList): AttrList {
    let attrs = base;
    for (const s of this.stages)
      if (s.resource !== null && s.select.select(deviceId, '') === Selected.ALL) attrs = s.resource(attrs);
    return attrs;
  }

  /** The readings of one message after the processors (a reading may be split when a processor selects metrics). */
  readings(deviceId: string, topic: string, readings: Reading[]): Reading[] {
    for (const s of this.stages) {
      if (s.point === null) continue;
      const sel = s.select.select(deviceId, topic);
      if (sel === Selected.NONE) continue;
      const point = s.readingPoint!;
      if (sel === Selected.ALL) {
        for (const r of readings) setAttributes(r, point(r.attributes ?? NONE));
        continue;
      }
      let out: Reading[] | null = null;
      for (let i = 0; i < readings.length; i++) {
        const r = readings[i];
        const parts = splitByMetric(r, (m) => s.select.metric(deviceId, topic, m));
        if (parts !== null) {
          setAttributes(parts[1], point(parts[1].attributes ?? NONE));
          out ??= readings.slice(0, i);
          if (parts[0].names.length > 0) out.push(parts[0]);
          out.push(parts[1]);
        } else out?.push(r);
      }
      if (out !== null) readings = out;
    }
    return readings;
  }

  /** The events of one message after the processors. Processors that select metrics do not apply to events. */
  events(deviceId: string, topic: string, events: DeviceEvent[]): DeviceEvent[] {
    for (const s of this.stages) {
      const sel = s.select.select(deviceId, topic);
      if (sel === Selected.NONE || (sel === Selected.METRICS && !s.select.allMetrics)) continue;
      for (const e of events) {
        if (s.point !== null) {
          const a = s.point(e.attributes ?? NONE);
          if (a !== (e.attributes ?? NONE)) e.attributes = a.length === 0 ? null : a;
        }
        if (s.body !== null) {
          const b = s.body(e.body);
          if (b !== e.body) e.body = b === undefined ? '' : b;
        }
      }
    }
    return events;
  }
}

function setAttributes(r: Reading, attrs: AttrList): void {
  if (attrs === (r.attributes ?? NONE)) return;
  r.attributes = attrs.length === 0 ? null : (attrs as string[]);
}

/** Reading attributes are text (the encoder writes string values); every action and strategy produces text. */
function asText(attrs: AttrList): AttrList {
  return attrs.every((v) => typeof v === 'string') ? attrs : attrs.map(String);
}

/** What a processor counted during one run, so that reusing the run's result counts it again. */
class Tally {
  private log: (() => void)[] | null = null;

  /** Counts now, and records it for the run in progress. */
  count(inc: () => void): void {
    inc();
    this.log?.push(inc);
  }

  run<T>(fn: () => T): { out: T; counted: (() => void)[] } {
    this.log = [];
    try {
      return { out: fn(), counted: this.log };
    } finally {
      this.log = null;
    }
  }
}

const sameList = (a: AttrList, b: AttrList): boolean => {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
};

/**
 * `fn` remembered for the last list it was given: the readings of one message, and of one device message after
 * message, nearly always carry the same attributes (most often none), so the processors run once per distinct list
 * and the readings share its result (lists are never changed in place). Each reuse counts what the run counted.
 */
function remembered(fn: (attrs: AttrList) => AttrList, tally: Tally): (attrs: AttrList) => AttrList {
  let lastIn: AttrList | null = null;
  let lastOut: AttrList = NONE;
  let counted: (() => void)[] = [];
  return (attrs) => {
    if (lastIn !== null && sameList(attrs, lastIn)) {
      for (const inc of counted) inc();
      return lastOut === lastIn ? attrs : lastOut;
    }
    const r = tally.run(() => fn(attrs));
    lastIn = attrs;
    lastOut = r.out;
    counted = r.counted;
    return lastOut;
  };
}

/**
 * `[rest, chosen]` when only some of a reading's metrics are chosen: the chosen points move to a reading of their own
 * (same ts, no seq: the seq stays once, with the rest); `chosen` is `r` itself when every metric is; null when none.
 */
function splitByMetric(r: Reading, chosen: (metric: string) => boolean): [Reading, Reading] | null {
  let picked: number[] | null = null;
  for (let j = 0; j < r.names.length; j++) if (chosen(r.names[j])) (picked ??= []).push(j);
  if (picked === null) return null;
  if (picked.length === r.names.length) return [{ ...r, names: [], values: [] }, r];
  const keep = (j: number) => !picked.includes(j);
  const rest: Reading = { ...r, names: r.names.filter((_, j) => keep(j)), values: r.values.filter((_, j) => keep(j)) };
  const part: Reading = {
    ts: r.ts,
    seq: -1,
    names: picked.map((j) => r.names[j]),
    values: picked.map((j) => r.values[j]),
    attributes: r.attributes,
  };
  return [rest, part];
}
