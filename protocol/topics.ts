import { TopicError, TopicErrorCodes } from './errors.js';
import { badIdChar, ID_RULE, isValidId, MAX_ID_LENGTH, whyBadId } from './ids.js';

/**
 * MQTT topic templates (agent/README.md "Payloads"): which topics carry a device's telemetry and events, and where the
 * agent reports rejections. A template has exactly one `{deviceId}` placeholder filling a whole topic level, no
 * wildcards and no empty levels, and no two templates may both match one topic.
 */

export type TopicKind = 'telemetry' | 'events' | 'errors';

export interface TopicTemplates {
  telemetry: string;
  events: string;
  errors: string;
}

export const DEFAULT_TOPICS: Readonly<TopicTemplates> = Object.freeze({
  telemetry: 'devices/{deviceId}/telemetry',
  events: 'devices/{deviceId}/events',
  errors: 'devices/{deviceId}/errors',
});

const PLACEHOLDER = '{deviceId}';
const KINDS: readonly TopicKind[] = ['telemetry', 'events', 'errors'];
function badDeviceId(id: string, topic: string | null): TopicError {
  const shown = JSON.stringify(id.length > 40 ? `${id.slice(0, 40)}…` : id);
  const where =
    topic === null ? '' : `topic ${JSON.stringify(topic.length > 200 ? `${topic.slice(0, 200)}…` : topic)}: `;
  return new TopicError(
    TopicErrorCodes.BAD_DEVICE_ID,
    `${where}device id ${shown} must be ${ID_RULE} (${whyBadId(id)})`,
  );
}

interface Compiled {
  kind: TopicKind;
  template: string;
  /** Text before and after the placeholder: a matching topic is prefix + id + suffix, the id without '/'. */
  prefix: string;
  suffix: string;
  /** Levels, with null for the placeholder: for the overlap check. */
  levels: (string | null)[];
}

function compile(kind: TopicKind, template: unknown): Compiled {
  const fail = (why: string): never => {
    throw new TopicError(
      TopicErrorCodes.BAD_TEMPLATE,
      `topic template for ${kind} ${JSON.stringify(template)} ${why}; expected e.g. ${JSON.stringify(DEFAULT_TOPICS[kind])}`,
    );
  };
  if (typeof template !== 'string') return fail('is not a string');
  const at = template.indexOf(PLACEHOLDER);
  if (at < 0) fail('has no {deviceId} placeholder');
  if (template.indexOf(PLACEHOLDER, at + 1) >= 0) fail('has {deviceId} more than once');
  if (/[+#]/.test(template)) fail('contains an MQTT wildcard (+ or #)');
  if (template.includes('\u0000')) fail('contains the character U+0000, which MQTT forbids in topics'); // [MQTT-4.7.3-2]
  if (template.startsWith('$')) fail('starts with $, which MQTT reserves for the broker');
  const levels = template.split('/');
  if (levels.some((level) => level === '')) fail('has an empty topic level');
  if (!levels.includes(PLACEHOLDER)) fail('does not give {deviceId} a whole topic level');
  return {
    kind,
    template,
    prefix: template.slice(0, at),
    suffix: template.slice(at + PLACEHOLDER.length),
    levels: levels.map((l) => (l === PLACEHOLDER ? null : l)),
  };
}

/** Whether some topic matches both templates: as many levels, and every level equal or a placeholder in either. */
function overlap(a: Compiled, b: Compiled): boolean {
  return (
    a.levels.length === b.levels.length &&
    a.levels.every((l, i) => l === null || b.levels[i] === null || l === b.levels[i])
  );
}

export interface TopicMatch {
  kind: TopicKind;
  deviceId: string;
}

export class TopicMatcher {
  private readonly compiled: readonly Compiled[];
  private readonly byKind: Readonly<Record<TopicKind, Compiled>>;

  /** Throws TopicError OTLPEDGE_TOPIC_BAD_TEMPLATE for a malformed template or two templates one topic could match. */
  constructor(readonly templates: Readonly<TopicTemplates> = DEFAULT_TOPICS) {
    this.compiled = KINDS.map((k) => compile(k, templates[k]));
    for (let i = 0; i < this.compiled.length; i++) {
      for (let j = i + 1; j < this.compiled.length; j++) {
        const a = this.compiled[i];
        const b = this.compiled[j];
        if (overlap(a, b)) {
          throw new TopicError(
            TopicErrorCodes.BAD_TEMPLATE,
            `topic templates for ${a.kind} ${JSON.stringify(a.template)} and ${b.kind} ${JSON.stringify(b.template)} can match the same topic; each kind needs topics of its own`,
          );
        }
      }
    }
    const [telemetry, events, errors] = this.compiled;
    this.byKind = { telemetry, events, errors };
  }

  /**
   * The kind and device of `topic`, or null when it has none of the templates' shapes (another level count, other
   * fixed levels). A topic of a template's shape whose device level is not a valid id — including an empty one —
   * throws TopicError OTLPEDGE_TOPIC_BAD_DEVICE_ID naming the topic and the rule, so the caller can count and log
   * it. Runs per message, so it compares prefix and suffix in place: no split, no regular expression.
   */
  match(topic: string): TopicMatch | null {
    for (const c of this.compiled) {
      const from = c.prefix.length;
      const to = topic.length - c.suffix.length;
      if (to < from || !topic.startsWith(c.prefix) || !topic.endsWith(c.suffix)) continue;
      const slash = topic.indexOf('/', from);
      if (slash >= 0 && slash < to) continue; // more levels than the template has
      if (to - from < 1 || to - from > MAX_ID_LENGTH || badIdChar(topic, from, to) >= 0) {
        throw badDeviceId(topic.slice(from, to), topic);
      }
      return { kind: c.kind, deviceId: topic.slice(from, to) };
    }
    return null;
  }

  /** The topic of `kind` for one device. Throws TopicError OTLPEDGE_TOPIC_BAD_DEVICE_ID for an invalid id. */
  topicFor(kind: TopicKind, deviceId: string): string {
    if (!isValidId(deviceId)) throw badDeviceId(deviceId, null);
    const c = this.byKind[kind];
    return c.prefix + deviceId + c.suffix;
  }

  /** The MQTT filter of one kind for all devices (`+` in the device level). */
  subscriptionFor(kind: TopicKind): string {
    const c = this.byKind[kind];
    return `${c.prefix}+${c.suffix}`;
  }

  /** Filters for what devices publish — telemetry and events — which broker-client mode subscribes to. */
  subscriptions(): string[] {
    return [this.subscriptionFor('telemetry'), this.subscriptionFor('events')];
  }
}
