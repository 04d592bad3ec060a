import type { IClientPublishOptions } from 'mqtt';
import { performance } from 'node:perf_hooks';
import { DeviceSignals, mulberry32 } from './signals.js';
import { EVENT_KINDS, eventPayload, type PayloadFormat, type TelemetryBuilder } from './payloads.js';

/**
 * One simulated device: its own MQTT.js connection, its sensors, its `seq` counter, and the record of what it sent
 * and what the broker acknowledged. The fleet's scheduler calls `tick()` when it is this device's turn; the device
 * publishes at once, or — when it may not (not connected, `maxInFlight` unacked, or the socket wants draining) —
 * owes the message and sends it as soon as it may (`drain()`), so a slow broker delays readings instead of losing
 * them. Each delayed tick counts as `behind`.
 */

/**
 * Which reading seqs of one device were acknowledged. Acks of one connection arrive in order, so nearly always this
 * is one number — every seq below `contiguous` is acked — and `ahead` stays empty; acks that arrive past a gap
 * (a message lost with a dropped connection, acked after its successors on a resend) wait in `ahead` as whole-message
 * ranges until the gap closes.
 */
export class AckedSeqs {
  private below = 0;
  /** first seq → last seq (inclusive) of acked messages beyond the first gap; disjoint */
  private readonly ahead = new Map<number, number>();
  private n = 0;

  /** Records the message that carried seqs `first`…`last`. An ack already recorded changes nothing. */
  add(first: number, last: number): void {
    if (first < this.below || this.ahead.has(first)) return;
    this.n += last - first + 1;
    if (first !== this.below) {
      this.ahead.set(first, last);
      return;
    }
    this.below = last + 1;
    for (let next = this.ahead.get(this.below); next !== undefined; next = this.ahead.get(this.below)) {
      this.ahead.delete(this.below);
      this.below = next + 1;
    }
  }

  /** Every seq below this was acknowledged. */
  get contiguous(): number {
    return this.below;
  }

  /** How many seqs were acknowledged. */
  get count(): number {
    return this.n;
  }

  has(seq: number): boolean {
    if (seq < this.below) return seq >= 0;
    for (const [first, last] of this.ahead) if (seq >= first && seq <= last) return true;
    return false;
  }

  /** The acknowledged seqs, ascending. */
  toArray(): number[] {
    const out = Array.from({ length: this.below }, (_, i) => i);
    for (const [first, last] of [...this.ahead].sort((a, b) => a[0] - b[0]))
      for (let s = first; s <= last; s++) out.push(s);
    return out;
  }
}

/** What every device of one fleet shares (one object, not a copy per device). */
export interface DeviceRun {
  readonly qos: 0 | 1 | 2;
  /** Unacked QoS 1/2 messages (telemetry and events) a device allows itself before it delays its ticks. */
  readonly maxInFlight: number;
  readonly readingsPerMessage: number;
  /** ms between two readings of one device: the readings of one message get timestamps this far apart. */
  readonly readingIntervalMs: number;
  /** Telemetry messages per device after which it is done; Infinity for none. */
  readonly count: number;
  /** Probability per reading of an event as well. */
  readonly eventRate: number;
  readonly watchErrors: boolean;
  readonly format: PayloadFormat;
  /** The publish options of every message (shared: MQTT.js copies them into each packet). */
  readonly publishOptions: IClientPublishOptions;
  readonly builder: TelemetryBuilder;
  /** False once the run's duration or count is reached or stop() began: owed messages are not sent any more. */
  sending: boolean;
  /** True while the fleet closes its connections: errors of messages flushed by the close are not the broker's. */
  stopping: boolean;
  readonly hooks: DeviceHooks;
}

export interface DeviceHooks {
  /** A telemetry or event message was acknowledged `ms` after it was handed to MQTT.js. */
  acked(ms: number): void;
  /** The device's first connection attempt ended, connected or not: the ramp may open another. */
  attempted(device: SimDevice): void;
  /** The device connected (+1) or lost its connection (-1). */
  connection(delta: 1 | -1): void;
  /** The device published its `count` telemetry messages. */
  done(device: SimDevice): void;
  error(device: SimDevice, err: Error): void;
  /** A message arrived on the device's errors topic (the agent rejected something it sent). */
  rejected(device: SimDevice, payload: Buffer): void;
  /** A telemetry message is handed to MQTT.js (absent: nobody records them). */
  published?(device: SimDevice, payload: string | Buffer): void;
}

/**
 * The part of an MQTT client a device uses: MQTT.js's client, or the lean one (lean-client.ts) for fleets too large
 * for MQTT.js's memory.
 */
export interface DeviceClient {
  readonly connected: boolean;
  /** The current connection's socket: backpressure, and `destroy()` to cut it as a network fault would. */
  readonly stream: NodeJS.EventEmitter & { writableNeedDrain?: boolean; destroy(): unknown };
  publish(topic: string, payload: string | Buffer, opts: IClientPublishOptions, cb?: (err?: Error) => void): unknown;
  subscribe(topic: string, opts: { qos: 0 | 1 }, cb: (err?: Error | null) => void): unknown;
  end(force: boolean, cb: () => void): unknown;
  on(event: 'connect' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'message', listener: (topic: string, payload: Buffer) => void): unknown;
}

export interface DeviceTopics {
  telemetry: string;
  events: string;
  errors: string;
}

export class SimDevice {
  client: DeviceClient | null = null;
  /** The next reading's seq; also how many readings were sent (seqs 0…seq-1), across reconnects. */
  seq = 0;
  /** Telemetry messages handed to MQTT.js / acknowledged. */
  messagesSent = 0;
  messagesAcked = 0;
  eventsSent = 0;
  eventsAcked = 0;
  errors = 0;
  rejections = 0;
  /** Ticks this device could not publish on time (delayed, then sent when it could). */
  behind = 0;
  /** Messages scheduled but not yet sent. */
  owed = 0;
  /** Unacked QoS 1/2 messages. */
  inFlight = 0;
  connected = false;
  /** Connected at least once: its schedule runs from then on. */
  started = false;
  readonly acked = new AckedSeqs();
  private attempted = false;
  private subscribed = false;
  private drainOn: NodeJS.EventEmitter | null = null;
  private readonly signals: DeviceSignals;
  private readonly rand: () => number;

  constructor(
    readonly id: string,
    readonly topics: DeviceTopics,
    seed: number,
    private readonly run: DeviceRun,
  ) {
    this.signals = new DeviceSignals(seed);
    this.rand = mulberry32(seed ^ 0x5bd1e995);
  }

  /** Connects with a client from `open` (which starts connecting at once); the client reconnects by itself. */
  connect(open: () => DeviceClient): void {
    const c = open();
    this.client = c;
    c.on('connect', () => this.onConnect(c));
    c.on('close', () => this.onClose());
    c.on('error', (err) => this.onError(err));
    if (this.run.watchErrors) c.on('message', (topic, payload) => this.onMessage(topic, payload));
  }

  /** This device's turn in the fleet's schedule. */
  tick(): void {
    if (!this.started || this.messagesSent + this.owed >= this.run.count) return;
    if (this.owed === 0 && this.mayPublish()) {
      this.publish();
      return;
    }
    // Late: it goes out after the messages owed before it, as soon as an ack, a reconnect or a drained socket allows.
    this.owed++;
    this.behind++;
    this.drain();
  }

  /** Sends owed messages while the device may. */
  drain(): void {
    while (this.owed > 0 && this.run.sending && this.mayPublish()) {
      this.owed--;
      this.publish();
    }
  }

  /** Closes the connection: politely when nothing is unacked, at once otherwise (the broker may be gone). */
  end(): Promise<void> {
    const c = this.client;
    if (c === null) return Promise.resolve();
    const polite = c.connected && this.inFlight === 0;
    return new Promise((resolve) => c.end(!polite, () => resolve()));
  }

  private mayPublish(): boolean {
    const c = this.client!;
    return (
      c.connected &&
      this.inFlight < this.run.maxInFlight &&
      !(c.stream as { writableNeedDrain?: boolean }).writableNeedDrain
    );
  }

  private publish(): void {
    const run = this.run;
    const c = this.client!;
    const k = run.readingsPerMessage;
    const now = Date.now();
    const first = this.seq;
    let events = 0;
    run.builder.begin(k);
    for (let i = 0; i < k; i++) {
      const ts = k === 1 ? now : Math.round(now - (k - 1 - i) * run.readingIntervalMs);
      run.builder.reading(ts, this.seq++, this.signals.values(ts));
      if (run.eventRate > 0 && this.rand() < run.eventRate) events++;
    }
    const payload = run.builder.end();
    run.hooks.published?.(this, payload);
    this.messagesSent++;
    if (run.qos === 0) c.publish(this.topics.telemetry, payload, run.publishOptions);
    else {
      this.inFlight++;
      const sentAt = performance.now();
      c.publish(this.topics.telemetry, payload, run.publishOptions, (err) =>
        this.onAck(err, first, first + k - 1, sentAt),
      );
    }
    for (let e = 0; e < events; e++) this.publishEvent(now, first + k - 1);
    if (this.messagesSent === run.count) run.hooks.done(this);
  }

  private publishEvent(ts: number, seq: number): void {
    const run = this.run;
    const kind = EVENT_KINDS[Math.floor(this.rand() * EVENT_KINDS.length)];
    const payload = eventPayload(run.format, ts, kind, seq);
    this.eventsSent++;
    if (run.qos === 0) {
      this.client!.publish(this.topics.events, payload, run.publishOptions);
      return;
    }
    this.inFlight++;
    const sentAt = performance.now();
    this.client!.publish(this.topics.events, payload, run.publishOptions, (err) => {
      this.inFlight--;
      if (err) this.failed(err);
      else {
        this.eventsAcked++;
        this.run.hooks.acked(performance.now() - sentAt);
      }
      if (this.owed > 0) this.drain();
    });
  }

  private onAck(err: Error | undefined, first: number, last: number, sentAt: number): void {
    this.inFlight--;
    if (err) this.failed(err);
    else {
      this.messagesAcked++;
      this.acked.add(first, last);
      this.run.hooks.acked(performance.now() - sentAt);
    }
    if (this.owed > 0) this.drain();
  }

  private failed(err: Error): void {
    if (this.run.stopping) return;
    this.errors++;
    this.run.hooks.error(this, err);
  }

  /** Cuts the connection as a network fault would (no DISCONNECT); the client reconnects after its period. */
  drop(): void {
    if (this.connected) this.client?.stream.destroy();
  }

  private onConnect(c: DeviceClient): void {
    if (!this.connected) {
      this.connected = true;
      this.run.hooks.connection(1);
    }
    this.started = true;
    this.firstAttemptEnded();
    // MQTT.js resubscribes by itself after a reconnect (resubscribe: true), so the errors topic is subscribed once.
    if (this.run.watchErrors && !this.subscribed) {
      this.subscribed = true;
      c.subscribe(this.topics.errors, { qos: 0 }, (err) => err && this.failed(err));
    }
    // A reconnect brings a new stream; its 'drain' resumes owed messages held back by socket backpressure.
    if (this.drainOn !== c.stream) {
      this.drainOn = c.stream;
      c.stream.on('drain', () => this.owed > 0 && this.drain());
    }
    this.drain();
  }

  private onClose(): void {
    if (this.connected) {
      this.connected = false;
      this.run.hooks.connection(-1);
    }
    this.firstAttemptEnded();
  }

  private onError(err: Error): void {
    this.failed(err);
  }

  private onMessage(topic: string, payload: Buffer): void {
    if (topic !== this.topics.errors) return;
    this.rejections++;
    this.run.hooks.rejected(this, payload);
  }

  private firstAttemptEnded(): void {
    if (this.attempted) return;
    this.attempted = true;
    this.run.hooks.attempted(this);
  }
}
