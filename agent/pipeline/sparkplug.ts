import type { Batcher } from '../buffer/batcher.js';
import type { InboundMessage, Settled } from '../receiver/message.js';
import { ProtoError } from '../../protocol/errors.js';
import { isValidId } from '../../protocol/ids.js';
import type { DeviceEvent, Reading } from '../../protocol/payload/types.js';
import { decodePayload, encodeCommand, scalarOf, type SparkplugPayload } from '../../protocol/sparkplug/payload.js';
import { toReadings, UnknownAlias, type SkipReason } from '../../protocol/sparkplug/readings.js';
import { parseTopic, renderId, type SparkplugTopic } from '../../protocol/sparkplug/topic.js';
import { MAX_DEFINITIONS_PER_NODE, MAX_DEVICES_PER_NODE, MAX_EDGE_NODES } from './sparkplug-state.js';
import { isValidName } from '../../protocol/payload/shape.js';
import type { EdgeNode, EdgeNodes } from './sparkplug-state.js';

export interface SparkplugConfig {
  topicRoot: string;
  /** template of a Sparkplug device's device id: {group}, {edge_node}, {device} */
  deviceId: string;
  /** template of an edge node's own device id: {group}, {edge_node} */
  nodeId: string;
  /** ms a skipped seq may arrive late before it counts as lost */
  reorderTimeoutMs: number;
  /** publish NCMD `Node Control/Rebirth` when the agent cannot read an edge node's data */
  requestRebirth: boolean;
}

export type SparkplugRefusal =
  | 'bad_topic'
  | 'bad_payload'
  | 'bad_device_id'
  | 'data_before_birth'
  | 'unknown_alias'
  | 'stale_death'
  /** past MAX_EDGE_NODES, or MAX_DEVICES_PER_NODE of one edge node */
  | 'too_many';

export interface SparkplugHooks {
  onMessage?(type: string): void;
  /** A message not taken, and why (stale deaths are expected after a reconnect; the rest are counted as refusals). */
  onRefused?(reason: SparkplugRefusal, topic: string, message: string): void;
  onSkipped?(reason: SkipReason, n: number): void;
  /** Sparkplug messages lost (skipped seqs that never came within the reorder timeout). */
  onLost?(edgeNode: string, n: number): void;
  onRebirthRequested?(edgeNode: string): void;
}

/** A rebirth is asked of one edge node at most this often. */
const REBIRTH_INTERVAL_MS = 5000;

/**
 * Sparkplug B ingest: `{root}/{group}/{NBIRTH|NDATA|NDEATH|DBIRTH|DDATA|DDEATH}/{edge_node}[/{device}]` messages
 * become readings and events of OTLP Resources — one per Sparkplug device and one per edge node — with the state
 * rules of Sparkplug 3.0: names and aliases from BIRTH (kept across restarts, sparkplug-state.ts), a death whose bdSeq
 * is not the birth's ignored, DATA before BIRTH refused (and a rebirth asked), seq gaps judged after a reorder
 * timeout (then a rebirth asked). The edge node's unwrapped seq is its Resource's `seq`, one point per message, so
 * lost Sparkplug messages count into its `missing` at the aggregator just as a device's MQTT `seq` gaps do.
 */
export class SparkplugIngest {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly cfg: SparkplugConfig,
    private readonly batcher: Batcher,
    private readonly nodes: EdgeNodes,
    /** publishes a command to edge nodes (QoS 0) */
    private readonly publish: (topic: string, payload: Buffer) => void,
    private readonly hooks: SparkplugHooks = {},
    private readonly now: () => number = Date.now,
  ) {}

  /** True for topics under the Sparkplug root. */
  owns(topic: string): boolean {
    return topic.startsWith(this.cfg.topicRoot) && topic.charCodeAt(this.cfg.topicRoot.length) === 0x2f;
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Stops judging gaps and writes what changed of the edge nodes. */
  close(): Promise<void> {
    this.stop();
    return this.nodes.flush();
  }

  handle(msg: InboundMessage, done: Settled): void {
    const t = parseTopic(this.cfg.topicRoot, msg.topic);
    if (t === 'state') return done(); // a host application's STATE: not data
    if ('invalid' in t) return this.refuse('bad_topic', msg.topic, `Sparkplug topic ${t.invalid}`, done);
    if (t.type === 'NCMD' || t.type === 'DCMD') return done(); // commands to edge nodes: not data
    this.hooks.onMessage?.(t.type);
    let p: SparkplugPayload;
    try {
      p = decodePayload(msg.payload);
    } catch (e) {
      if (!(e instanceof ProtoError)) throw e;
      return this.refuse('bad_payload', msg.topic, `not a Sparkplug B payload: ${e.message}`, done);
    }
    const nodeId = renderId(this.cfg.nodeId, t);
    const deviceId = t.device === '' ? nodeId : renderId(this.cfg.deviceId, t);
    for (const id of [nodeId, deviceId])
      if (!isValidId(id))
        return this.refuse(
          'bad_device_id',
          msg.topic,
          `Sparkplug ids give device id ${JSON.stringify(id.slice(0, 200))}, not 1–128 characters of [A-Za-z0-9._:-]`,
          done,
        );
    const ack = msg.qos === 0 ? null : done; // QoS 1 and 2: answered once the commit is durable
    try {
      this.take(t, p, nodeId, deviceId, msg.topic, ack);
    } catch (e) {
      if (!(e instanceof UnknownAlias)) throw e;
      const n = this.nodes.get(t.group, t.edgeNode);
      if (n !== undefined) this.askRebirth(n);
      return this.refuse('unknown_alias', msg.topic, e.message, done);
    }
    if (ack === null) done();
  }

  private take(
    t: SparkplugTopic,
    p: SparkplugPayload,
    nodeId: string,
    deviceId: string,
    topic: string,
    done: Settled | null,
  ): void {
    const arrival = this.now();
    const at = p.timestamp ?? arrival;
    if (t.type === 'NDEATH') return this.death(t, p, nodeId, at, topic, done);
    let n = this.nodes.get(t.group, t.edgeNode);
    let seq: number;
    if (t.type === 'NBIRTH') {
      n ??= this.nodes.getOrCreate(t.group, t.edgeNode) ?? undefined;
      if (n === undefined)
        return this.refuse('too_many', topic, `more than ${MAX_EDGE_NODES} Sparkplug edge nodes`, done ?? noop);
      const bdSeq = p.metrics.find((m) => m.name === 'bdSeq');
      n.rebirth(bdSeq === undefined ? -1 : Number(scalarOf(bdSeq.value, bdSeq.datatype ?? 8) ?? -1));
      n.last += 1; // the birth's seq 0 continues the unwrapped count
      n.last8 = p.seq ?? 0;
      n.synced = true;
      seq = n.last;
    } else if (
      n === undefined ||
      !n.born ||
      (t.type !== 'DBIRTH' && t.device !== '' && !n.devices.get(t.device)?.born)
    ) {
      const what = n?.born ? `device ${t.device}` : `edge node ${t.edgeNode}`;
      const asked = n ?? this.nodes.getOrCreate(t.group, t.edgeNode);
      if (asked !== null) this.askRebirth(asked);
      return this.refuse('data_before_birth', topic, `${t.type} before the BIRTH of ${what}`, done ?? noop);
    } else seq = this.sequence(n, p.seq);
    if (t.type === 'DBIRTH') {
      if (!n.devices.has(t.device) && n.devices.size >= MAX_DEVICES_PER_NODE)
        return this.refuse(
          'too_many',
          topic,
          `more than ${MAX_DEVICES_PER_NODE} devices of one edge node`,
          done ?? noop,
        );
      n.devices.set(t.device, { born: true, types: new Map() });
    }
    const birth = t.type === 'NBIRTH' || t.type === 'DBIRTH';
    const types = t.device === '' ? n.types : n.devices.get(t.device)!.types;
    const mapped = toReadings(
      p,
      (m) => {
        if (birth && m.name !== undefined) {
          const datatype = m.datatype ?? 0;
          // Kept for later DATA: bounded per edge node, and only names a reading can carry.
          if (n.definitions < MAX_DEFINITIONS_PER_NODE && isValidName(m.name)) {
            if (!types.has(m.name)) n.definitions++;
            types.set(m.name, datatype);
            if (m.alias !== undefined) {
              if (!n.aliases.has(m.alias)) n.definitions++;
              n.aliases.set(m.alias, { device: t.device, name: m.name, datatype });
            }
          }
          return { name: m.name, datatype };
        }
        if (m.name !== undefined) return { name: m.name, datatype: types.get(m.name) ?? 0 };
        const def = m.alias === undefined ? undefined : n.aliases.get(m.alias);
        return def !== undefined && def.device === t.device ? def : null;
      },
      arrival,
    );
    for (const s of count(mapped.skipped)) this.hooks.onSkipped?.(s[0], s[1]);
    const readings: Reading[] = [];
    const strings: DeviceEvent[] = [];
    for (const r of mapped.readings) {
      if (r.names.length > 0) readings.push(r);
      else strings.push(event(r.ts, 'info', 'Sparkplug string metrics', r.attributes ?? []));
    }
    const seqReading: Reading = { ts: at, seq, names: [], values: [], attributes: null };
    const events: DeviceEvent[] = [...strings];
    if (t.type === 'DDEATH') {
      n.devices.get(t.device)!.born = false;
      events.push(event(at, 'warn', 'Sparkplug device offline (DDEATH)', ['sparkplug.message_type', 'DDEATH']));
    } else if (birth) {
      const body = `Sparkplug ${t.device === '' ? 'edge node' : 'device'} online (${t.type})`;
      const attrs = ['sparkplug.message_type', t.type, ...(t.device === '' ? ['sparkplug.bdseq', n.bdSeq] : [])];
      events.push(event(at, 'info', body, attrs));
    }
    this.nodes.changed(n, birth || t.type === 'DDEATH');
    // Everything added in this turn goes into one commit: `done` waits on the last add.
    const same = deviceId === nodeId ? readings.find((r) => r.ts === at) : undefined;
    if (seq >= 0) {
      if (same !== undefined) same.seq = seq;
      else if (deviceId === nodeId) readings.push(seqReading);
      else this.batcher.addReadings(nodeId, [seqReading], null);
    }
    if (events.length > 0) this.batcher.addEvents(deviceId, events, null);
    if (readings.length > 0 || done !== null) this.batcher.addReadings(deviceId, readings, done);
  }

  /** NDEATH: the edge node and its devices go offline, unless its bdSeq is not the current birth's (stale). */
  private death(
    t: SparkplugTopic,
    p: SparkplugPayload,
    nodeId: string,
    at: number,
    topic: string,
    done: Settled | null,
  ) {
    const n = this.nodes.get(t.group, t.edgeNode);
    const m = p.metrics.find((x) => x.name === 'bdSeq');
    const bdSeq = m === undefined ? -1 : Number(scalarOf(m.value, m.datatype ?? 8) ?? -1);
    if (n === undefined || !n.born || bdSeq !== n.bdSeq) {
      const why = n?.born ? `its bdSeq ${bdSeq} is not the current birth's (${n.bdSeq})` : 'the edge node is not born';
      return this.refuse('stale_death', topic, `NDEATH ignored: ${why}`, done ?? noop);
    }
    n.born = false;
    for (const [device, d] of n.devices) {
      if (!d.born) continue;
      d.born = false;
      const attrs = ['sparkplug.message_type', 'NDEATH'];
      const offline = event(at, 'warn', 'Sparkplug device offline (its edge node died)', attrs);
      this.batcher.addEvents(renderId(this.cfg.deviceId, { ...t, device }), [offline], null);
    }
    this.nodes.changed(n, true);
    const attrs = ['sparkplug.message_type', 'NDEATH', 'sparkplug.bdseq', bdSeq];
    this.batcher.addEvents(nodeId, [event(at, 'warn', 'Sparkplug edge node offline (NDEATH)', attrs)], done);
  }

  /**
   * Moves the edge node's unwrapped seq to the message's: forward by up to half a wrap (seqs skipped over wait for
   * the reorder timeout), or back (a late one, which fills its gap).
   */
  private sequence(n: EdgeNode, seq8: number | undefined): number {
    if (seq8 === undefined) return -1;
    const diff = (((seq8 - n.last8) % 256) + 256) % 256;
    if (!n.synced) {
      // After a restart the kept seq is less than half a wrap behind: read forward, and judge no gap across it.
      n.last += diff === 0 ? 256 : diff;
      n.last8 = seq8;
      n.synced = true;
      return n.last;
    }
    if (diff > 0 && diff < 128) {
      const deadline = this.now() + this.cfg.reorderTimeoutMs;
      for (let s = n.last + 1; s < n.last + diff; s++) n.missing.set(s, deadline);
      if (diff > 1) this.watch();
      n.last += diff;
      n.last8 = seq8;
      return n.last;
    }
    const late = diff === 0 ? n.last : n.last - (256 - diff); // late (or repeated): fills its gap, if it was one
    n.missing.delete(late);
    return late;
  }

  private watch(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.judge(), Math.max(50, this.cfg.reorderTimeoutMs / 4));
    this.timer.unref();
  }

  /** Seqs still missing past the reorder timeout are lost: counted, and a rebirth asked. */
  private judge(): void {
    const now = this.now();
    let waiting = false;
    for (const n of this.nodes.all()) {
      if (n.missing.size === 0) continue;
      let lost = 0;
      for (const [s, deadline] of n.missing)
        if (deadline <= now) {
          n.missing.delete(s);
          lost++;
        }
      if (lost > 0) {
        this.hooks.onLost?.(n.key, lost);
        this.askRebirth(n);
      }
      if (n.missing.size > 0) waiting = true;
    }
    if (!waiting) this.stop();
  }

  /** NCMD `Node Control/Rebirth` [Sparkplug 3.0 §6.4.5], at most once per REBIRTH_INTERVAL_MS per edge node. */
  private askRebirth(n: EdgeNode): void {
    if (!this.cfg.requestRebirth) return;
    const now = this.now();
    if (now - n.rebirthAskedAt < REBIRTH_INTERVAL_MS) return;
    n.rebirthAskedAt = now;
    const topic = `${this.cfg.topicRoot}/${n.group}/NCMD/${n.edgeNode}`;
    this.publish(topic, Buffer.from(encodeCommand(now, [{ name: 'Node Control/Rebirth', value: true }])));
    this.hooks.onRebirthRequested?.(n.key);
  }

  private refuse(reason: SparkplugRefusal, topic: string, message: string, done: Settled): void {
    this.hooks.onRefused?.(reason, topic, message);
    if (reason === 'stale_death') return done(); // expected after a reconnect: nothing to tell the sender
    done(undefined, {
      kind: reason === 'bad_topic' || reason === 'bad_device_id' ? 'topic_name_invalid' : 'payload_format_invalid',
      message,
    });
  }
}

function noop(): void {}

function event(
  ts: number,
  severity: 'info' | 'warn',
  body: string,
  attributes: DeviceEvent['attributes'],
): DeviceEvent {
  return { ts, severityNumber: severity === 'info' ? 9 : 13, severityText: severity, body, attributes };
}

function count(skipped: readonly { reason: SkipReason }[]): [SkipReason, number][] {
  const by = new Map<SkipReason, number>();
  for (const s of skipped) by.set(s.reason, (by.get(s.reason) ?? 0) + 1);
  return [...by];
}
