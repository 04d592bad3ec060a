import { AgentErrorCodes } from '../errors.js';
import { PayloadError, TopicError } from '../../protocol/errors.js';
import { decodeEvents, decodeTelemetry } from '../../protocol/payload/decode.js';
import type { TopicMatcher } from '../../protocol/topics.js';
import type { Batcher } from '../buffer/batcher.js';
import type { InboundMessage, Settled } from '../receiver/message.js';
import { addToEvents, addToReadings, messageAttributes } from '../../protocol/payload/message-attributes.js';
import type { RecordProcessors } from '../../runtime/processors/chain.js';
import type { SparkplugIngest } from './sparkplug.js';
import type { Admission } from '../../runtime/processors/memory-limiter.js';

export interface RejectionReport {
  deviceId: string;
  topic: string;
  code: string;
  reason: string;
  message: string;
}

export interface IngestHooks {
  onAccepted?(kind: 'telemetry' | 'events', qos: number, count: number): void;
  /** A message rejected as a whole: count it, log it, tell the device on its errors topic. */
  onRejected?(report: RejectionReport): void;
  /** A QoS 0 message dropped because commits fell behind, memory is over the limit, or the agent is stopping. */
  onDropped?(reason: 'overload' | 'memory_limit' | 'shutdown', messages: number): void;
  /** QoS 1 and 2 messages held (+1) and let go (−1) while the memory limiter refuses input. */
  onHeld?(delta: number): void;
}

/**
 * The processor stage: topic → device, payload → readings or events, then into the group commit. A QoS 1 (or 2)
 * message is acknowledged only when its batch is durable; a rejected message is acknowledged at once (sending it
 * again cannot help) and reported. Nothing here throws at a receiver: every outcome ends in `done`.
 */
export class IngestPipeline {
  private closing = false;

  constructor(
    private readonly topics: TopicMatcher,
    private readonly batcher: Batcher,
    private readonly hooks: IngestHooks = {},
    private readonly now: () => number = Date.now,
    /** The attributes and redaction processors, or null when none is configured. */
    private readonly processors: RecordProcessors | null = null,
    /** The memory limiter, or null when none is configured. */
    private readonly admission: Admission | null = null,
    /** Sparkplug B ingest, when mqtt.sparkplug is enabled: topics under its root go there. */
    private readonly sparkplug: SparkplugIngest | null = null,
  ) {}

  /**
   * Stops taking new input: QoS 0 is dropped (counted), and QoS 1 is left unacknowledged so the device or upstream
   * broker sends it again after the restart. What was accepted before keeps its commit.
   */
  close(): void {
    this.closing = true;
  }

  handle(msg: InboundMessage, done: Settled): void {
    const sparkplug = this.sparkplug !== null && this.sparkplug.owns(msg.topic);
    let match = null;
    if (!sparkplug)
      try {
        match = this.topics.match(msg.topic);
      } catch (e) {
        const message = e instanceof TopicError ? e.message : String(e);
        this.hooks.onRejected?.({
          deviceId: '',
          topic: msg.topic,
          code: (e as TopicError).code ?? AgentErrorCodes.INTERNAL,
          reason: 'bad_device_id',
          message,
        });
        return done(undefined, { kind: 'topic_name_invalid', message });
      }
    if (!sparkplug && (match === null || match.kind === 'errors')) return done(); // not device data: nothing to store

    if (this.closing) {
      if (msg.qos === 0) {
        this.hooks.onDropped?.('shutdown', 1);
        return done();
      }
      return; // never acknowledged: redelivered after restart
    }
    const best = msg.qos === 0;
    this.admission?.taken(msg.payload.length);
    if (this.admission?.refusing) {
      // Over the memory limit: QoS 0 is dropped (counted); QoS 1 and 2 wait, unacknowledged, until it is under again
      // (the receivers stop reading their senders meanwhile).
      if (best) {
        this.hooks.onDropped?.('memory_limit', 1);
        return done();
      }
      this.hooks.onHeld?.(1);
      this.admission.whenAccepting(() => {
        this.hooks.onHeld?.(-1);
        this.handle(msg, done);
      });
      return;
    }
    if (best && !this.batcher.acceptsBestEffort) {
      this.hooks.onDropped?.('overload', 1);
      return done();
    }

    if (sparkplug)
      try {
        return this.sparkplug!.handle(msg, done);
      } catch (e) {
        // Ours, not the sender's (its refusals are answered inside): answered anyway, and the agent keeps serving.
        const message = `internal error in Sparkplug ingest: ${String(e)}`;
        this.hooks.onRejected?.({
          deviceId: '',
          topic: msg.topic,
          code: AgentErrorCodes.INTERNAL,
          reason: 'internal',
          message,
        });
        return done();
      }
    if (match === null || match.kind === 'errors') return done(); // returned above already; narrows the type
    const opts = { arrivalMs: this.now(), contentType: msg.contentType };
    try {
      const attrs = msg.userProperties === undefined ? null : messageAttributes(msg.userProperties);
      if (match.kind === 'telemetry') {
        let readings = decodeTelemetry(msg.payload, opts);
        if (attrs !== null && attrs.size > 0) addToReadings(readings, attrs);
        this.hooks.onAccepted?.('telemetry', msg.qos, readings.length);
        if (this.processors !== null) readings = this.processors.readings(match.deviceId, msg.topic, readings);
        this.batcher.addReadings(match.deviceId, readings, best ? null : done);
      } else {
        let events = decodeEvents(msg.payload, opts);
        if (attrs !== null && attrs.size > 0) addToEvents(events, attrs);
        this.hooks.onAccepted?.('events', msg.qos, events.length);
        if (this.processors !== null) events = this.processors.events(match.deviceId, msg.topic, events);
        this.batcher.addEvents(match.deviceId, events, best ? null : done);
      }
      if (best) done();
    } catch (e) {
      // A PayloadError is the device's mistake; anything else is ours, but the message is still answered and the
      // agent keeps serving.
      const report =
        e instanceof PayloadError
          ? { code: e.code, reason: e.reason, message: e.message }
          : {
              code: AgentErrorCodes.INTERNAL,
              reason: 'internal',
              message: `internal error while decoding: ${String(e)}`,
            };
      this.hooks.onRejected?.({ deviceId: match.deviceId, topic: msg.topic, ...report });
      done(undefined, { kind: 'payload_format_invalid', message: report.message });
    }
  }
}
