import { TurnSchedule } from './schedule.js';
import * as hdr from 'hdr-histogram-js';
import { performance } from 'node:perf_hooks';
import { TopicMatcher } from '../../protocol/topics.js';
import { mulberry32 } from './signals.js';
import { SimDevice, type AckedSeqs, type DeviceClient, type DeviceHooks, type DeviceRun } from './device.js';
import { clientFactory } from './connections.js';
import { CONTENT_TYPES, telemetryBuilder } from './payloads.js';
import { resolveFleetOptions, type FleetOptions, type ResolvedFleetOptions } from './options.js';

export {
  FleetOptionsError,
  resolveFleetOptions,
  type FleetOptionProblem,
  type FleetOptions,
  type ResolvedFleetOptions,
} from './options.js';

/**
 * A fleet of simulated devices publishing readings over MQTT, each device on its own connection, for demos, load
 * tests and the agent's benchmarks and fault tests.
 *
 * One scheduler for the whole fleet (not a timer per device, so it scales to 10,000 devices): every TICK_MS it works
 * out how many messages the fleet owes by now at `rate` and hands turns to devices round-robin. Each device thus
 * publishes every `devices × readingsPerMessage / rate` seconds, its turns evenly spaced, and consecutive messages
 * come from different devices; a tick's messages go out as one batch.
 *
 *   const fleet = new Fleet({ url, devices: 100, rate: 1000, qos: 1, count: 50 });
 *   await fleet.start();        // connected (or failed) every device, in waves of connectConcurrency
 *   await fleet.finished;       // count or duration reached (or stop() called)
 *   const summary = await fleet.stop();   // waits up to drainTimeout for outstanding acks, then disconnects
 */

export interface FleetTotals {
  devices: number;
  connected: number;
  /** Connections made again after a device's first (after a broker restart, a storm, a network fault). */
  reconnects: number;
  /** Telemetry messages handed to MQTT.js. */
  sent: number;
  /** Telemetry messages acknowledged (PUBACK, or PUBCOMP at QoS 2); 0 at QoS 0. */
  acked: number;
  readings: { sent: number; acked: number };
  events: { sent: number; acked: number };
  /** Failed publishes and connection errors. */
  errors: number;
  /** Messages that arrived on the devices' errors topics (with watchErrors). */
  rejections: number;
  /** Turns a device could not publish on time (not connected, maxInFlight unacked, socket full) and sent later. */
  behind: number;
  /** Messages waiting for a device to be able to send them. */
  owed: number;
  /** Turns due that the fleet's own process has not got to (it is short of CPU): the load generator, not the
   *  broker, is then what limits the rate. */
  backlog: number;
  elapsedMs: number;
}

/** The record of one device: it sent seqs 0…sent-1; which of them were acknowledged is in `ackedSeqs`. */
export interface DeviceRecord {
  /** Readings sent (their seqs are 0…sent-1). */
  sent: number;
  /** Readings acknowledged. */
  acked: number;
  ackedSeqs: AckedSeqs;
  rejections: number;
  connected: boolean;
}

/** `connected` is the count when sending ended (stop() disconnects every device afterwards). */
export interface FleetSummary extends FleetTotals {
  qos: 0 | 1 | 2;
  /** Sent at QoS 1/2 but never acknowledged: in flight at the end, or lost with a connection. */
  unconfirmed: number;
  /** Devices that never connected. */
  neverConnected: number;
  /** Readings per second: asked for, and achieved over the run. */
  rate: { target: number; achieved: number };
  ackLatencyMs: { p50: number; p99: number; max: number; count: number };
  lastError: string | null;
  /** The latest messages received on errors topics (at most 20). */
  lastRejections: { deviceId: string; message: string }[];
  perDevice: Map<string, DeviceRecord>;
}

const KEEP_REJECTIONS = 20;

function histogram(): hdr.Histogram {
  // Microseconds, 2 significant digits; the pure-JS build (the WebAssembly one needs an async init).
  return hdr.build({
    bitBucketSize: 32,
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 2,
    useWebAssembly: false,
  });
}

export class Fleet {
  readonly options: ResolvedFleetOptions;
  private readonly devices: SimDevice[] = [];
  private readonly byId = new Map<string, SimDevice>();
  private readonly run: DeviceRun;
  private readonly latency = histogram();
  private readonly intervalLatency = histogram();
  private connectedCount = 0;
  private connectsCount = 0;
  private rampTimer: NodeJS.Timeout | null = null;
  private doneCount = 0;
  private lastError: string | null = null;
  private readonly rejectionLog: { deviceId: string; message: string }[] = [];
  private readonly schedule: TurnSchedule;
  private t0 = 0;
  private endedAt = 0;
  private firstConnectAt = 0;
  private connectedAtEnd = 0;
  // the connection ramp
  private nextToOpen = 0;
  private opening = 0;
  private attemptedCount = 0;
  private rampDone: () => void = () => undefined;
  private finishRun: () => void = () => undefined;
  private stopping: Promise<FleetSummary> | null = null;
  /** Resolves when the run's duration or count is reached, or stop() is called. */
  readonly finished: Promise<void>;

  constructor(options: FleetOptions = {}) {
    const o = (this.options = resolveFleetOptions(options));
    this.finished = new Promise((resolve) => (this.finishRun = resolve));
    const hooks: DeviceHooks = {
      acked: (ms) => {
        const us = Math.max(1, Math.round(ms * 1000));
        this.latency.recordValue(us);
        this.intervalLatency.recordValue(us);
      },
      attempted: () => this.onAttempted(),
      connection: (delta) => {
        this.connectedCount += delta;
        if (delta === 1) this.connectsCount++;
        if (this.firstConnectAt === 0) this.firstConnectAt = performance.now();
      },
      done: () => ++this.doneCount === this.devices.length && this.finish(),
      error: (_d, err) => (this.lastError = err.message),
      rejected: (d, payload) => {
        this.rejectionLog.push({ deviceId: d.id, message: payload.toString('utf8') });
        if (this.rejectionLog.length > KEEP_REJECTIONS) this.rejectionLog.shift();
      },
    };
    const onPublish = o.onPublish;
    if (onPublish) hooks.published = (d, payload) => onPublish(d.id, payload);
    const format = { encoding: o.encoding, shape: o.shape, tsFormat: o.tsFormat };
    this.run = {
      qos: o.qos,
      maxInFlight: o.maxInFlight,
      readingsPerMessage: o.readingsPerMessage,
      readingIntervalMs: (o.devices / o.rate) * 1000,
      count: o.count ?? Infinity,
      eventRate: o.eventRate,
      watchErrors: o.watchErrors,
      format,
      publishOptions: Object.freeze(
        o.protocolVersion === 5
          ? { qos: o.qos, properties: { contentType: CONTENT_TYPES[o.encoding] } }
          : { qos: o.qos },
      ),
      builder: telemetryBuilder(format),
      sending: false,
      stopping: false,
      hooks,
    };
    this.schedule = new TurnSchedule(
      o.devices,
      o.rate / o.readingsPerMessage / 1000,
      (i) => this.devices[i].tick(),
      () => this.finish(),
    );
    const topics = new TopicMatcher(o.topics);
    const width = String(o.firstIndex + o.devices - 1).length;
    for (let i = 0; i < o.devices; i++) {
      const index = o.firstIndex + i;
      const id = o.prefix + String(index).padStart(width, '0');
      const d = new SimDevice(
        id,
        {
          telemetry: topics.topicFor('telemetry', id),
          events: topics.topicFor('events', id),
          errors: topics.topicFor('errors', id),
        },
        o.seed * 1_000_003 + index,
        this.run,
      );
      this.devices.push(d);
      this.byId.set(id, d);
    }
  }

  /** Device ids, in index order. */
  get deviceIds(): string[] {
    return this.devices.map((d) => d.id);
  }

  get connected(): number {
    return this.connectedCount;
  }

  /**
   * Starts publishing and connects the devices in waves; resolves once every device has connected or failed its
   * first attempt (MQTT.js keeps retrying those). A device's schedule begins when it first connects.
   */
  async start(): Promise<void> {
    if (this.t0 !== 0) throw new Error('Fleet.start() was already called');
    this.t0 = performance.now();
    this.run.sending = true;
    const ramp = new Promise<void>((resolve) => (this.rampDone = resolve));
    this.openMore();
    this.schedule.start(this.t0);
    await ramp;
    if (this.options.duration !== undefined && this.run.sending) this.schedule.endIn(this.options.duration * 1000);
  }

  /**
   * Stops publishing, waits up to drainTimeout for outstanding acks, disconnects every device and returns the
   * summary. Safe to call at any time and more than once.
   */
  stop(): Promise<FleetSummary> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<FleetSummary> {
    this.finish();
    this.rampDone();
    const deadline = performance.now() + this.options.drainTimeout;
    while (this.devices.some((d) => d.inFlight > 0) && performance.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    this.run.stopping = true;
    await Promise.all(this.devices.map((d) => d.end()));
    return this.summary();
  }

  /** The acknowledged seqs of one device, ascending (empty at QoS 0 or for an unknown id). */
  ackedSeqs(deviceId: string): number[] {
    return this.byId.get(deviceId)?.acked.toArray() ?? [];
  }

  totals(): FleetTotals {
    const t: FleetTotals = {
      devices: this.devices.length,
      connected: this.connectedCount,
      reconnects: this.connectsCount,
      sent: 0,
      acked: 0,
      readings: { sent: 0, acked: 0 },
      events: { sent: 0, acked: 0 },
      errors: 0,
      rejections: 0,
      behind: 0,
      owed: 0,
      backlog: this.schedule.backlog,
      elapsedMs: this.t0 === 0 ? 0 : (this.endedAt || performance.now()) - this.t0,
    };
    for (const d of this.devices) {
      t.sent += d.messagesSent;
      t.acked += d.messagesAcked;
      t.readings.sent += d.seq;
      t.readings.acked += d.acked.count;
      t.events.sent += d.eventsSent;
      t.events.acked += d.eventsAcked;
      t.errors += d.errors;
      t.rejections += d.rejections;
      t.behind += d.behind;
      t.owed += d.owed;
      if (d.started) t.reconnects--;
    }
    return t;
  }

  summary(): FleetSummary {
    const t = this.totals();
    // The achieved rate counts from the first connection, not from start(): connecting 10,000 devices takes a while.
    const sendingMs = this.firstConnectAt === 0 ? 0 : (this.endedAt || performance.now()) - this.firstConnectAt;
    const perDevice = new Map<string, DeviceRecord>();
    for (const d of this.devices)
      perDevice.set(d.id, {
        sent: d.seq,
        acked: d.acked.count,
        ackedSeqs: d.acked,
        rejections: d.rejections,
        connected: d.connected,
      });
    const h = this.latency;
    // A percentile is its bucket's highest equivalent value, which can lie above the largest value recorded.
    const ms = (us: number) => Math.round(Math.min(us, h.maxValue)) / 1000;
    return {
      ...t,
      connected: this.endedAt === 0 ? t.connected : this.connectedAtEnd,
      qos: this.options.qos,
      unconfirmed: this.options.qos === 0 ? 0 : t.sent - t.acked,
      neverConnected: this.devices.filter((d) => !d.started).length,
      rate: { target: this.options.rate, achieved: sendingMs > 0 ? (t.readings.sent * 1000) / sendingMs : 0 },
      ackLatencyMs: {
        p50: ms(h.getValueAtPercentile(50)),
        p99: ms(h.getValueAtPercentile(99)),
        max: ms(h.maxValue),
        count: h.totalCount,
      },
      lastError: this.lastError,
      lastRejections: [...this.rejectionLog],
      perDevice,
    };
  }

  /** p99 ack latency (ms) since the previous call, or null when nothing was acked; for the live display. */
  takeIntervalAckLatency(): number | null {
    const h = this.intervalLatency;
    const p99 = h.totalCount === 0 ? null : Math.round(h.getValueAtPercentile(99)) / 1000;
    h.reset();
    return p99;
  }

  /**
   * A reconnect storm: cuts the connections of `fraction` of the connected devices at once, as a network fault
   * would (no DISCONNECT); each reconnects after its reconnect period (jittered 0.5–1.5 ×), so they all come back
   * within about a second. Returns how many were cut.
   */
  storm(fraction = 1): number {
    const pick = mulberry32(this.connectsCount + 7);
    let cut = 0;
    for (const d of this.devices)
      if (d.connected && pick() < fraction) {
        d.drop();
        cut++;
      }
    return cut;
  }

  private open(d: SimDevice, index: number): () => DeviceClient {
    return clientFactory(this.options, d.id, index);
  }

  private openMore(): void {
    const rate = this.options.connectRate;
    while (
      this.opening < this.options.connectConcurrency &&
      this.nextToOpen < this.devices.length &&
      !this.run.stopping &&
      this.stopping === null
    ) {
      if (rate > 0) {
        // A ramp: by t ms after start, at most 1 + t × rate / 1000 connections opened.
        const dueAt = this.t0 + (this.nextToOpen * 1000) / rate;
        const wait = dueAt - performance.now();
        if (wait > 0) {
          this.rampTimer ??= setTimeout(() => {
            this.rampTimer = null;
            this.openMore();
          }, wait);
          return;
        }
      }
      const i = this.nextToOpen++;
      this.opening++;
      this.devices[i].connect(this.open(this.devices[i], i));
    }
  }

  private onAttempted(): void {
    this.opening--;
    if (++this.attemptedCount === this.devices.length) this.rampDone();
    this.openMore();
  }

  private finish(): void {
    if (this.rampTimer) clearTimeout(this.rampTimer);
    this.rampTimer = null;
    this.schedule.stop();
    this.run.sending = false;
    if (this.endedAt === 0 && this.t0 !== 0) {
      this.endedAt = performance.now();
      this.connectedAtEnd = this.connectedCount;
    }
    this.finishRun();
  }
}
