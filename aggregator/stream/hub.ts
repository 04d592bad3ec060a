import type { DeviceData } from '../device/types.js';
import { alertJson, type AlertChange } from '../alerts/alert.js';
import {
  deviceTest,
  eventMessages,
  readingCount,
  readingsItem,
  statusMessage,
  type LiveItem,
  type LiveKind,
  type StreamFilter,
} from './messages.js';

/** Events of one device in one request sent at most (the newest); a flood of records is not turned into messages. */
const EVENTS_PER_DEVICE = 1000;
/** Reading messages per queued item, about (a device's readings of one batch are never split). */
const CHUNK = 256;

interface Subscriber {
  test: (deviceId: string) => boolean;
  kinds: ReadonlySet<LiveKind>;
  metrics: readonly string[];
  push: (item: LiveItem) => void;
}

/**
 * The live messages of one node: what its state takes (readings and events, once durable), its devices' online
 * transitions and its alert changes, handed to every subscriber whose filter takes them. The node publishes only
 * what it applied itself, i.e. for the devices it owns, so a stream that subscribes at every member of the ring
 * sees each reading once. With no subscriber of a kind, publishing it costs one comparison.
 */
export class LiveHub {
  private readonly subs = new Set<Subscriber>();
  private readonly perKind: Record<LiveKind, number> = { reading: 0, event: 0, status: 0, alert: 0 };
  /** Reading count of each device of the batch being published (-1: not counted yet). */
  private counts = new Int32Array(256);

  constructor(
    private readonly nodeId: string,
    /** The tenant of a device this node holds ('' = none), for subscribers bound to a tenant. */
    private readonly tenantOf: (deviceId: string) => string = () => '',
  ) {}

  get size(): number {
    return this.subs.size;
  }

  /** Starts handing `push` the messages `filter` takes; returns the unsubscribe. */
  subscribe(filter: StreamFilter, push: (item: LiveItem) => void): () => void {
    const ids = deviceTest(filter);
    const tenant = filter.tenant;
    const test = tenant === undefined ? ids : (id: string) => ids(id) && this.tenantOf(id) === tenant;
    const s: Subscriber = { test, kinds: new Set(filter.kinds), metrics: filter.metrics, push };
    this.subs.add(s);
    for (const k of s.kinds) this.perKind[k]++;
    return () => {
      if (!this.subs.delete(s)) return;
      for (const k of s.kinds) this.perKind[k]--;
    };
  }

  /**
   * A batch's device data is durable in this node's state. Each subscriber gets items of up to CHUNK messages: the
   * readings are counted here (once per device, whoever takes them) and written as JSON only when a client reads them.
   */
  readings(batch: readonly DeviceData[]): void {
    if (this.perKind.reading === 0) return;
    if (this.counts.length < batch.length) this.counts = new Int32Array(batch.length * 2);
    const counts = this.counts;
    counts.fill(-1, 0, batch.length);
    for (const s of this.subs) {
      if (!s.kinds.has('reading')) continue;
      let devices: DeviceData[] = [];
      let count = 0;
      for (let i = 0; i < batch.length; i++) {
        const d = batch[i];
        if (!s.test(d.deviceId)) continue;
        let c = counts[i];
        if (c < 0) counts[i] = c = readingCount(d);
        if (c === 0) continue;
        devices.push(d);
        count += c;
        if (count >= CHUNK) {
          s.push(readingsItem(devices, count, s.metrics));
          devices = [];
          count = 0;
        }
      }
      if (count > 0) s.push(readingsItem(devices, count, s.metrics));
    }
  }

  /** A logs request is durable in this node's state: its records become event messages. */
  events(otlp: Uint8Array): void {
    if (this.perKind.event === 0) return;
    const wants = (id: string) => {
      for (const s of this.subs) if (s.kinds.has('event') && s.test(id)) return true;
      return false;
    };
    for (const m of eventMessages(otlp, wants, EVENTS_PER_DEVICE)) {
      const json = JSON.stringify(m);
      for (const s of this.subs) if (s.kinds.has('event') && s.test(m.device)) s.push(json);
    }
  }

  status(device: string, online: boolean, lastSeen: number): void {
    if (this.perKind.status === 0) return;
    let json: string | null = null;
    for (const s of this.subs)
      if (s.kinds.has('status') && s.test(device)) s.push((json ??= statusMessage(device, online, lastSeen)));
  }

  alerts(changes: readonly AlertChange[]): void {
    if (this.perKind.alert === 0) return;
    for (const c of changes) {
      let json: string | null = null;
      for (const s of this.subs)
        if (s.kinds.has('alert') && s.test(c.alert.device))
          s.push(
            (json ??= JSON.stringify({ type: 'alert', status: c.status, alert: alertJson(c.alert, this.nodeId) })),
          );
    }
  }
}
