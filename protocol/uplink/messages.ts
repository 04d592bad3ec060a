import { Compression } from '../compression.js';
import { ProtoReader } from '../otlp/reader.js';
import { ProtoWriter, Wire } from '../otlp/writer.js';

import type { Signal } from '../otlp/signal.js';

/**
 * The uplink and peer messages (protocol/proto/uplink.proto, peer.proto), hand-encoded: they wrap an OTLP payload
 * that is already compressed, and a generic encoder would copy those bytes twice per batch. Field numbers are the
 * .proto files'; a test decodes these with protobufjs from the .proto files to keep the two in step.
 */

export enum AckStatus {
  UNSPECIFIED = 0,
  OK = 1,
  RETRY = 2,
  REJECTED = 3,
}

/**
 * UplinkBatch { agent_id = 1; seq = 2; signal = 3; compression = 4; payload = 5; points = 6; ring_version = 7;
 * acked_below = 8; buffer_id = 9 }
 */
export interface UplinkBatch {
  agentId: string;
  /** Per agent, monotonic; (agentId, seq) is the deduplication key. */
  seq: number;
  signal: Signal;
  compression: Compression;
  payload: Uint8Array;
  points: number;
  /** Ring the batch was formed under; 0 = none. */
  ringVersion: number;
  /** Every seq of this agent below it has been acknowledged or moved aside: never sent again. 0 = not said. */
  ackedBelow?: number;
  /** The agent's buffer id (random, made with the buffer); a new one means seqs start again from 1. 0 = not said. */
  bufferId?: number;
}

/** UplinkAck { status = 1; retry_after_ms = 2; reason = 3; ring_version = 4 } */
export interface UplinkAck {
  status: AckStatus;
  retryAfterMs: number;
  reason: string;
  ringVersion: number;
}

export interface RingMemberInfo {
  id: string;
  address: string;
  healthy: boolean;
}

/** RingInfo { version = 1; vnodes = 2; members = 3 (RingMember { id = 1; address = 2; healthy = 3 }) } */
export interface RingInfo {
  version: number;
  vnodes: number;
  members: RingMemberInfo[];
}

export function encodeUplinkBatch(b: UplinkBatch): Uint8Array {
  const w = new ProtoWriter(b.payload.length + 64 + b.agentId.length * 3);
  if (b.agentId) w.stringField(1, b.agentId);
  if (b.seq) {
    w.tag(2, Wire.VARINT);
    w.varint(b.seq);
  }
  if (b.signal) {
    w.tag(3, Wire.VARINT);
    w.varint(b.signal);
  }
  if (b.compression) {
    w.tag(4, Wire.VARINT);
    w.varint(b.compression);
  }
  if (b.payload.length) w.bytesField(5, b.payload);
  if (b.points) {
    w.tag(6, Wire.VARINT);
    w.varint(b.points);
  }
  if (b.ringVersion) {
    w.tag(7, Wire.VARINT);
    w.varint(b.ringVersion);
  }
  if (b.ackedBelow) {
    w.tag(8, Wire.VARINT);
    w.varint(b.ackedBelow);
  }
  if (b.bufferId) {
    w.tag(9, Wire.VARINT);
    w.varint(b.bufferId);
  }
  return w.finish();
}

/** Decodes an UplinkBatch; `payload` is a view into `bytes` (no copy). Throws ProtoError on malformed input. */
export function decodeUplinkBatch(bytes: Uint8Array): UplinkBatch {
  const r = new ProtoReader(bytes);
  const b: UplinkBatch = {
    agentId: '',
    seq: 0,
    signal: 0,
    compression: 0,
    payload: new Uint8Array(0),
    points: 0,
    ringVersion: 0,
    ackedBelow: 0,
    bufferId: 0,
  };
  r.fields(r.end, (f, w) => {
    if (f === 1 && w === 2) b.agentId = r.string();
    else if (f === 2 && w === 0) b.seq = r.varint();
    else if (f === 3 && w === 0) b.signal = r.varint();
    else if (f === 4 && w === 0) b.compression = r.varint();
    else if (f === 5 && w === 2) b.payload = r.bytes();
    else if (f === 6 && w === 0) b.points = r.varint();
    else if (f === 7 && w === 0) b.ringVersion = r.varint();
    else if (f === 8 && w === 0) b.ackedBelow = r.varint();
    else if (f === 9 && w === 0) b.bufferId = r.varint();
    else r.skip(w);
  });
  return b;
}

/**
 * UplinkFrame { frame = 1; payload = 2; points = 3; segments = 4; acked_below = 5; ring_version = 6; agent_id = 7;
 * buffer_id = 8; format = 9 }
 */
export interface UplinkFrame {
  frame: number;
  payload: Uint8Array;
  points: number;
  segments: number;
  ackedBelow: number;
  ringVersion: number;
  /** The stream's header, on its first frame only ('' and 0 on the others). */
  agentId: string;
  bufferId: number;
  format: number;
}

/** FrameAck { frame = 1; status = 2; retry_after_ms = 3; reason = 4; ring_version = 5; rejected = 6 (packed) } */
export interface FrameAck {
  frame: number;
  status: AckStatus;
  retryAfterMs: number;
  reason: string;
  ringVersion: number;
  /** Seqs of segments that can never be accepted. */
  rejected: number[];
}

export function encodeUplinkFrame(f: UplinkFrame): Uint8Array {
  const w = new ProtoWriter(f.payload.length + 64 + f.agentId.length * 3);
  const varint = (field: number, v: number) => {
    if (!v) return;
    w.tag(field, Wire.VARINT);
    w.varint(v);
  };
  varint(1, f.frame);
  if (f.payload.length) w.bytesField(2, f.payload);
  varint(3, f.points);
  varint(4, f.segments);
  varint(5, f.ackedBelow);
  varint(6, f.ringVersion);
  if (f.agentId) w.stringField(7, f.agentId);
  varint(8, f.bufferId);
  varint(9, f.format);
  return w.finish();
}

/** Decodes an UplinkFrame; `payload` is a view into `bytes`. Throws ProtoError on malformed input. */
export function decodeUplinkFrame(bytes: Uint8Array): UplinkFrame {
  const r = new ProtoReader(bytes);
  const f: UplinkFrame = {
    frame: 0,
    payload: new Uint8Array(0),
    points: 0,
    segments: 0,
    ackedBelow: 0,
    ringVersion: 0,
    agentId: '',
    bufferId: 0,
    format: 0,
  };
  r.fields(r.end, (n, w) => {
    if (n === 2 && w === 2) f.payload = r.bytes();
    else if (n === 7 && w === 2) f.agentId = r.string();
    else if (w !== 0) r.skip(w);
    else if (n === 1) f.frame = r.varint();
    else if (n === 3) f.points = r.varint();
    else if (n === 4) f.segments = r.varint();
    else if (n === 5) f.ackedBelow = r.varint();
    else if (n === 6) f.ringVersion = r.varint();
    else if (n === 8) f.bufferId = r.varint();
    else if (n === 9) f.format = r.varint();
    else r.skip(w);
  });
  return f;
}

export function encodeFrameAck(a: FrameAck): Uint8Array {
  const w = new ProtoWriter(64 + a.reason.length * 3 + a.rejected.length * 10);
  const varint = (field: number, v: number) => {
    if (!v) return;
    w.tag(field, Wire.VARINT);
    w.varint(v);
  };
  varint(1, a.frame);
  varint(2, a.status);
  varint(3, a.retryAfterMs);
  if (a.reason) w.stringField(4, a.reason);
  varint(5, a.ringVersion);
  if (a.rejected.length) {
    w.fork(6);
    for (const seq of a.rejected) w.varint(seq);
    w.join();
  }
  return w.finish();
}

export function decodeFrameAck(bytes: Uint8Array): FrameAck {
  const r = new ProtoReader(bytes);
  const a: FrameAck = { frame: 0, status: 0, retryAfterMs: 0, reason: '', ringVersion: 0, rejected: [] };
  r.fields(r.end, (n, w) => {
    if (n === 4 && w === 2) a.reason = r.string();
    else if (n === 6 && w === 2) {
      const end = r.submessageEnd();
      while (r.pos < end) a.rejected.push(r.varint());
    } else if (n === 6 && w === 0) a.rejected.push(r.varint());
    else if (w !== 0) r.skip(w);
    else if (n === 1) a.frame = r.varint();
    else if (n === 2) a.status = r.varint();
    else if (n === 3) a.retryAfterMs = r.varint();
    else if (n === 5) a.ringVersion = r.varint();
    else r.skip(w);
  });
  return a;
}

export function encodeUplinkAck(a: UplinkAck): Uint8Array {
  const w = new ProtoWriter(64 + a.reason.length * 3);
  if (a.status) {
    w.tag(1, Wire.VARINT);
    w.varint(a.status);
  }
  if (a.retryAfterMs) {
    w.tag(2, Wire.VARINT);
    w.varint(a.retryAfterMs);
  }
  if (a.reason) w.stringField(3, a.reason);
  if (a.ringVersion) {
    w.tag(4, Wire.VARINT);
    w.varint(a.ringVersion);
  }
  return w.finish();
}

export function decodeUplinkAck(bytes: Uint8Array): UplinkAck {
  const r = new ProtoReader(bytes);
  const a: UplinkAck = { status: 0, retryAfterMs: 0, reason: '', ringVersion: 0 };
  r.fields(r.end, (f, w) => {
    if (f === 1 && w === 0) a.status = r.varint();
    else if (f === 2 && w === 0) a.retryAfterMs = r.varint();
    else if (f === 3 && w === 2) a.reason = r.string();
    else if (f === 4 && w === 0) a.ringVersion = r.varint();
    else r.skip(w);
  });
  return a;
}

export function encodeRingInfo(info: RingInfo): Uint8Array {
  const w = new ProtoWriter(256);
  if (info.version) {
    w.tag(1, Wire.VARINT);
    w.varint(info.version);
  }
  if (info.vnodes) {
    w.tag(2, Wire.VARINT);
    w.varint(info.vnodes);
  }
  for (const m of info.members) {
    w.fork(3);
    w.stringField(1, m.id);
    w.stringField(2, m.address);
    if (m.healthy) {
      w.tag(3, Wire.VARINT);
      w.bool(true);
    }
    w.join();
  }
  return w.finish();
}

export function decodeRingInfo(bytes: Uint8Array): RingInfo {
  const r = new ProtoReader(bytes);
  const info: RingInfo = { version: 0, vnodes: 0, members: [] };
  r.fields(r.end, (f, w) => {
    if (f === 1 && w === 0) info.version = r.varint();
    else if (f === 2 && w === 0) info.vnodes = r.varint();
    else if (f === 3 && w === 2) {
      const m: RingMemberInfo = { id: '', address: '', healthy: false };
      r.fields(r.submessageEnd(), (mf, mw) => {
        if (mf === 1 && mw === 2) m.id = r.string();
        else if (mf === 2 && mw === 2) m.address = r.string();
        else if (mf === 3 && mw === 0) m.healthy = r.varint() !== 0;
        else r.skip(mw);
      });
      info.members.push(m);
    } else r.skip(w);
  });
  return info;
}

/** Empty message (RingRequest {}). */
export const EMPTY = new Uint8Array(0);
