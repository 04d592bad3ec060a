import { matches } from '../../protocol/mqtt/frames.js';
import mqemitter from 'mqemitter';

/** Where the broker sends publishes it acknowledges and drops; never delivered (kept here: broker.ts imports this). */
export const DROPPED_TOPIC = '$otlp-edge/dropped';

type Emitter = mqemitter.MQEmitter & { removeAllListeners?(topic: string, done?: () => void): unknown };

/** Topics remembered before the cache starts over (one per device and kind; a few MB at most). */
const CACHE_MAX = 100_000;

/**
 * The embedded broker's message router for a broker that mostly takes input: devices publish telemetry and almost
 * nothing subscribes to it, yet aedes matches every publish against its subscription trie (4–5 % of the agent's CPU
 * at QoS 0, measured). This wraps aedes' own emitter (mqemitter, same options) and remembers, per topic, whether any
 * subscription can match it at all; a publish no one can receive is answered at once without the match. Any
 * subscribe or unsubscribe empties that memory, so a subscription is seen by the very next publish.
 */
export type SparseEmitter = mqemitter.MQEmitter & {
  /** False when no subscription can match `topic`: a publish to it reaches no one. */
  canReach(topic: string): boolean;
};

export function sparseEmitter(opts: { concurrency?: number } = {}): SparseEmitter {
  opts = { concurrency: 100, ...opts }; // aedes' default
  const mq = mqemitter({ concurrency: opts.concurrency, matchEmptyLevels: true }) as Emitter; // as aedes makes it
  const filters = new Map<string, string[]>(); // filter → its levels, one entry per distinct filter
  const counts = new Map<string, number>();
  const reachable = new Map<string, boolean>();

  const added = (topic: string) => {
    counts.set(topic, (counts.get(topic) ?? 0) + 1);
    if (!filters.has(topic)) filters.set(topic, topic.split('/'));
    reachable.clear();
  };
  const removed = (topic: string, all: boolean) => {
    const n = all ? 0 : (counts.get(topic) ?? 1) - 1;
    if (n > 0) counts.set(topic, n);
    else {
      counts.delete(topic);
      filters.delete(topic);
    }
    reachable.clear();
  };
  const canReach = (topic: string): boolean => {
    let r = reachable.get(topic);
    if (r === undefined) {
      const levels = topic.split('/');
      r = false;
      for (const f of filters.values()) {
        if (matches(f, levels)) {
          r = true;
          break;
        }
      }
      if (reachable.size >= CACHE_MAX) reachable.clear();
      reachable.set(topic, r);
    }
    return r;
  };

  const on = mq.on.bind(mq);
  const removeListener = mq.removeListener.bind(mq);
  const removeAll = mq.removeAllListeners?.bind(mq);
  const emit = mq.emit.bind(mq);
  mq.on = (topic, listener, done) => {
    added(topic);
    return on(topic, listener, done);
  };
  mq.removeListener = (topic, listener, done) => {
    removed(topic, false);
    removeListener(topic, listener, done);
  };
  if (removeAll) {
    mq.removeAllListeners = (topic, done) => {
      removed(topic, true);
      return removeAll(topic, done);
    };
  }
  mq.emit = (message, cb) => {
    if (message.topic === DROPPED_TOPIC) return cb?.(); // acknowledged and dropped (broker.ts)
    if (canReach(message.topic)) return emit(message, cb);
    cb?.();
  };
  return Object.assign(mq, { canReach });
}
