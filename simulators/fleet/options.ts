import { DEFAULT_TOPICS, TopicMatcher, type TopicTemplates } from '../../protocol/topics.js';
import type { Encoding, Shape, TsFormat } from './payloads.js';

/** The fleet's options, their defaults and their validation (every problem reported at once, naming the flag). */

export interface FleetOptions {
  /** Broker URL: mqtt://, mqtts://, ws:// or wss://; default mqtt://127.0.0.1:1883. */
  url?: string;
  /** Number of devices (connections); default 1. */
  devices?: number;
  /** Device ids are `prefix` + index, zero-padded to the width of the largest index; default 'sim-'. */
  prefix?: string;
  /** Index of the first device, so several processes can share out one fleet; default 0. */
  firstIndex?: number;
  /** MQTT password of every device, or a function of the device id; default none (username only). */
  password?: string | ((deviceId: string) => string);
  /** 4 (MQTT 3.1.1, default) or 5 (then each message carries its content type). */
  protocolVersion?: 4 | 5;
  /** CA certificate(s) (PEM) to verify an mqtts:// or wss:// broker; default the system's. */
  ca?: string | Buffer;
  /** Verify the broker's certificate; default true. */
  rejectUnauthorized?: boolean;
  /** Readings per second across the whole fleet; default 1 per device. */
  rate?: number;
  /** Readings per message (>1 publishes an array); default 1. */
  readingsPerMessage?: number;
  /** Seconds of publishing after every device has made its first connection attempt (connecting 10,000 devices
   *  takes a while, and a run should last this long at full strength); default none. */
  duration?: number;
  /** Telemetry messages per device after which it stops publishing; default none. */
  count?: number;
  /** 0, 1 (default) or 2. */
  qos?: 0 | 1 | 2;
  /** Unacked QoS 1/2 messages per device before it delays its next ones; default 20. */
  maxInFlight?: number;
  /** 'json' (default) or 'cbor'. */
  encoding?: Encoding;
  /** 'flat' (default) or 'explicit' (`metrics` and `attributes` objects). */
  shape?: Shape;
  /** 'ms' (epoch milliseconds, default) or 'rfc3339'. */
  tsFormat?: TsFormat;
  /** Probability per reading of also publishing an event; default 0.001. */
  eventRate?: number;
  /** Topic templates with `{deviceId}`; default devices/{deviceId}/telemetry, …/events, …/errors. */
  topics?: Partial<TopicTemplates>;
  /** Subscribe each device to its errors topic and count what arrives there; default false. */
  watchErrors?: boolean;
  /** Connection attempts under way at once while the fleet connects; default 200. */
  connectConcurrency?: number;
  /** New connections per second while the fleet connects (a ramp); default 0 = as fast as connectConcurrency
   *  allows. */
  connectRate?: number;
  /**
   * 'mqtt.js' (default: every MQTT feature, TLS, WebSocket) or 'lean' (lean-client.ts: MQTT 3.1.1 over mqtt://,
   * QoS 0/1, a few hundred bytes per connection — for 10,000 devices in one process).
   */
  client?: 'mqtt.js' | 'lean';
  /** 10,000 ms to wait for a CONNACK. */
  connectTimeout?: number;
  /** 1,000 ms between reconnection attempts, scaled per device by 0.5–1.5 so a broker restart is not met by
   *  every device in the same millisecond. */
  reconnectPeriod?: number;
  /** 60 s MQTT keep-alive. */
  keepalive?: number;
  /** 5,000 ms stop() waits for outstanding acks before it disconnects. */
  drainTimeout?: number;
  /** Seed of the devices' values (the same seed gives the same readings); default 1. */
  seed?: number;
  /**
   * Called with each telemetry message as it is handed to MQTT.js (a benchmark keeps what was sent to price the
   * same readings in other encodings); default none.
   */
  onPublish?: (deviceId: string, payload: string | Buffer) => void;
}

export type ResolvedFleetOptions = Readonly<
  Required<Omit<FleetOptions, 'password' | 'ca' | 'duration' | 'count' | 'topics' | 'onPublish'>>
> & {
  readonly onPublish: FleetOptions['onPublish'];
  readonly password: FleetOptions['password'];
  readonly ca: FleetOptions['ca'];
  readonly duration: number | undefined;
  readonly count: number | undefined;
  readonly topics: Readonly<TopicTemplates>;
};

/** One invalid option: which, what was expected, what was given. */
export interface FleetOptionProblem {
  /** The option's name (`qos`, `topics.events`). */
  option: string;
  expected: string;
  got: unknown;
}

export class FleetOptionsError extends Error {
  readonly code = 'OTLPEDGE_SIM_BAD_OPTION';
  constructor(readonly problems: FleetOptionProblem[]) {
    super(
      `invalid fleet options: ${problems.map((p) => `${p.option}: expected ${p.expected}, got ${show(p.got)}`).join('; ')}`,
    );
    this.name = 'FleetOptionsError';
  }
}

const show = (v: unknown): string =>
  typeof v === 'string' ? `'${v}'` : typeof v === 'function' ? 'a function' : String(v);

const DEFAULTS = {
  url: 'mqtt://127.0.0.1:1883',
  devices: 1,
  prefix: 'sim-',
  firstIndex: 0,
  protocolVersion: 4,
  rejectUnauthorized: true,
  readingsPerMessage: 1,
  qos: 1,
  maxInFlight: 20,
  encoding: 'json',
  shape: 'flat',
  tsFormat: 'ms',
  eventRate: 0.001,
  watchErrors: false,
  connectConcurrency: 200,
  connectRate: 0,
  client: 'mqtt.js' as 'mqtt.js' | 'lean',
  connectTimeout: 10_000,
  reconnectPeriod: 1000,
  keepalive: 60,
  drainTimeout: 5000,
  seed: 1,
} as const;

/** Applies defaults and checks every option, reporting all problems together. */
export function resolveFleetOptions(o: FleetOptions): ResolvedFleetOptions {
  const problems: FleetOptionProblem[] = [];
  const check = (option: string, got: unknown, ok: boolean, expected: string) =>
    ok || problems.push({ option, expected, got });
  const int = (option: string, v: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
    check(
      option,
      v,
      Number.isInteger(v) && v >= min && v <= max,
      max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`,
    );
  const positive = (option: string, v: number) => check(option, v, Number.isFinite(v) && v > 0, 'a number > 0');
  const oneOf = (option: string, v: unknown, values: readonly unknown[], expected: string) =>
    check(option, v, values.includes(v), expected);

  const r = { ...DEFAULTS, ...definedOnly(o) } as Record<string, unknown> & typeof DEFAULTS & FleetOptions;
  let scheme = '';
  try {
    scheme = new URL(r.url).protocol;
  } catch {
    /* reported below */
  }
  check('url', r.url, ['mqtt:', 'mqtts:', 'ws:', 'wss:'].includes(scheme), 'an mqtt://, mqtts://, ws:// or wss:// URL');
  int('devices', r.devices, 1, 1_000_000);
  int('firstIndex', r.firstIndex, 0);
  check(
    'prefix',
    r.prefix,
    typeof r.prefix === 'string' && /^[A-Za-z0-9._:-]{0,100}$/.test(r.prefix),
    'up to 100 characters of [A-Za-z0-9._:-]',
  );
  check(
    'password',
    r.password,
    r.password === undefined || typeof r.password === 'string' || typeof r.password === 'function',
    'a string or a function of the device id',
  );
  oneOf('protocolVersion', r.protocolVersion, [4, 5], '4 or 5');
  check('onPublish', r.onPublish, r.onPublish === undefined || typeof r.onPublish === 'function', 'a function');
  const rate = r.rate ?? (Number.isInteger(r.devices) && r.devices >= 1 ? r.devices : 1);
  positive('rate', rate);
  int('readingsPerMessage', r.readingsPerMessage, 1, 10_000);
  if (r.duration !== undefined) positive('duration', r.duration);
  if (r.count !== undefined) int('count', r.count, 1);
  oneOf('qos', r.qos, [0, 1, 2], '0, 1 or 2');
  int('maxInFlight', r.maxInFlight, 1, 65_535);
  oneOf('encoding', r.encoding, ['json', 'cbor'], "'json' or 'cbor'");
  oneOf('shape', r.shape, ['flat', 'explicit'], "'flat' or 'explicit'");
  oneOf('tsFormat', r.tsFormat, ['ms', 'rfc3339'], "'ms' or 'rfc3339'");
  check(
    'eventRate',
    r.eventRate,
    typeof r.eventRate === 'number' && r.eventRate >= 0 && r.eventRate <= 1,
    'a probability from 0 to 1',
  );
  const topics = { ...DEFAULT_TOPICS, ...definedOnly(o.topics ?? {}) };
  try {
    new TopicMatcher(topics);
  } catch (e) {
    problems.push({ option: 'topics', expected: 'valid topic templates', got: (e as Error).message });
  }
  oneOf('watchErrors', r.watchErrors, [true, false], 'true or false');
  int('connectConcurrency', r.connectConcurrency, 1);
  check('connectRate', r.connectRate, Number.isFinite(r.connectRate) && r.connectRate >= 0, 'connections/s >= 0');
  oneOf('client', r.client, ['mqtt.js', 'lean'], "'mqtt.js' or 'lean'");
  if (r.client === 'lean') {
    // What the lean client does not do is refused here, not ignored.
    check('url', r.url, scheme === 'mqtt:', 'an mqtt:// URL with client lean (no TLS or WebSocket)');
    check('protocolVersion', r.protocolVersion, r.protocolVersion === 4, '4 with client lean');
    check('qos', r.qos, (r.qos as number) !== 2, '0 or 1 with client lean');
  }
  positive('connectTimeout', r.connectTimeout);
  int('reconnectPeriod', r.reconnectPeriod, 0);
  int('keepalive', r.keepalive, 0, 65_535);
  check('drainTimeout', r.drainTimeout, Number.isFinite(r.drainTimeout) && r.drainTimeout >= 0, 'a number of ms >= 0');
  int('seed', r.seed, 0);
  if (problems.length > 0) throw new FleetOptionsError(problems);
  return Object.freeze({ ...r, rate, topics: Object.freeze(topics) }) as ResolvedFleetOptions;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** What the fleet did so far; cheap enough to take every second. */
