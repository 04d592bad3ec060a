import { TopicError, TopicErrorCodes } from './errors.js';

/**
 * MQTT topic templates: which topics carry a device's telemetry and events, and where the agent reports
 * rejections. A template has exactly one `{deviceId}` placeholder filling a whole topic level.
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
const DEVICE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** 1–128 characters of [A-Za-z0-9._:-] (DESIGN.md "Device → agent"). */
export function isValidDeviceId(id: string): boolean {
  return DEVICE_ID.test(id);
}

interface Compiled {
  kind: TopicKind;
  prefix: string;
  suffix: string;
}

function compile(kind: TopicKind, template: string): Compiled {
  const fail = (why: string): never => {
    throw new TopicError(TopicErrorCodes.BAD_TEMPLATE, `topic template for ${kind} ${JSON.stringify(template)} ${why}; expected e.g. ${JSON.stringify(DEFAULT_TOPICS[kind])}`);
  };
  const at = template.indexOf(PLACEHOLDER);
  if (at < 0) fail('has no {deviceId} placeholder');
  if (template.indexOf(PLACEHOLDER, at + 1) >= 0) fail('has {deviceId} more than once');
  if (/[+#]/.test(template)) fail('contains an MQTT wildcard (+ or #)');
  if (template.split('/').some((level) => level === '')) fail('has an empty topic level');
  const prefix = template.slice(0, at);
  const suffix = template.slice(at + PLACEHOLDER.length);
  if ((prefix !== '' && !prefix.endsWith('/')) || (suffix !== '' && !suffix.startsWith('/'))) fail('does not give {deviceId} a whole topic level');
  if (template.startsWith('$')) fail('starts with $, which MQTT reserves for the broker');
  return { kind, prefix, suffix };
}

/** A topic that had a template's shape but named an invalid device. */
function badDevice(topic: string, id: string): TopicError {
  const shown = id.length > 40 ? `${id.slice(0, 40)}…` : id;
  return new TopicError(TopicErrorCodes.BAD_DEVICE_ID, `topic ${JSON.stringify(topic.length > 200 ? topic.slice(0, 200) : topic)}: device id ${JSON.stringify(shown)} must be 1–128 characters of [A-Za-z0-9._:-]`);
}

export class TopicMatcher {
  private readonly compiled: Compiled[];

  /** Throws TopicError (OTLPEDGE_TOPIC_BAD_TEMPLATE) for a malformed template or two kinds sharing one shape. */
  constructor(readonly templates: Readonly<TopicTemplates> = DEFAULT_TOPICS) {
    this.compiled = (['telemetry', 'events', 'errors'] as const).map((k) => compile(k, templates[k]));
    const shapes = new Set(this.compiled.map((c) => `${c.prefix}\u0000${c.suffix}`));
    if (shapes.size !== 3) throw new TopicError(TopicErrorCodes.BAD_TEMPLATE, 'the telemetry, events and errors topic templates must differ');
  }

  /**
   * The kind and device of `topic`, or null when it matches no template. A topic of a template's shape whose device
   * level is not a valid id throws TopicError (OTLPEDGE_TOPIC_BAD_DEVICE_ID), so the caller can report it.
   * Per message, so it compares prefix and suffix in place (no split, no regular expression on the topic).
   */
  match(topic: string): { kind: TopicKind; deviceId: string } | null {
    for (const c of this.compiled) {
      if (topic.length <= c.prefix.length + c.suffix.length) continue;
      if (!topic.startsWith(c.prefix) || !topic.endsWith(c.suffix)) continue;
      const id = topic.slice(c.prefix.length, topic.length - c.suffix.length);
      if (id.includes('/')) continue; // more levels than the template has
      if (!isValidDeviceId(id)) throw badDevice(topic, id);
      return { kind: c.kind, deviceId: id };
    }
    return null;
  }

  topicFor(kind: TopicKind, deviceId: string): string {
    const c = this.compiled.find((x) => x.kind === kind)!;
    return c.prefix + deviceId + c.suffix;
  }

  /** The MQTT filter of one kind for all devices (`+` in the device level). */
  subscriptionFor(kind: TopicKind): string {
    return this.topicFor(kind, '+');
  }

  /** Filters for what devices publish: telemetry and events (broker-client mode subscribes to these). */
  subscriptions(): string[] {
    return [this.subscriptionFor('telemetry'), this.subscriptionFor('events')];
  }
}
