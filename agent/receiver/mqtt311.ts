import type { Client } from 'aedes';
import {
  ackPacket,
  PacketType,
  PINGRESP,
  readPublish,
  readSubscribe,
  subackPacket,
} from '../../protocol/mqtt/frames.js';
import { CLOSED, type DeviceSession } from './device-session.js';
import type { DeviceSessions } from './device-sessions.js';

/**
 * MQTT 3.1.1 (and 3.1) packets on the lean device-session path, once a device is logged in: publishes at every QoS,
 * subscriptions (granted at QoS 0), pings and DISCONNECT. MQTT 5 connections are served by mqtt5.ts.
 */
export class Mqtt311 {
  constructor(private readonly host: DeviceSessions) {}

  /** One packet after CONNACK; false stops reading (the connection is closing). */
  packet(s: DeviceSession, first: number, body: Buffer): boolean {
    switch (first >> 4) {
      case PacketType.PUBLISH:
        this.received(s, first, body);
        return true;
      case PacketType.PUBREL: {
        if ((first & 0x0f) !== 0x02 || body.length < 2) return this.host.refuse(s, 'protocol_error'); // [MQTT-3.6.1-1]
        const id = body.readUInt16BE(0);
        s.qos2?.delete(id);
        s.write(ackPacket(PacketType.PUBCOMP, id));
        return true;
      }
      case PacketType.SUBSCRIBE:
        if ((first & 0x0f) !== 0x02) return this.host.refuse(s, 'protocol_error'); // [MQTT-3.8.1-1]
        this.subscribe(s, body);
        return true;
      case PacketType.UNSUBSCRIBE: {
        if ((first & 0x0f) !== 0x02) return this.host.refuse(s, 'protocol_error'); // [MQTT-3.10.1-1]
        const { messageId, filters } = readSubscribe(body, false);
        this.host.subscriptions.remove(
          s,
          filters.map((f) => f.topic),
        );
        s.write(ackPacket(PacketType.UNSUBACK, messageId));
        return true;
      }
      case PacketType.PINGREQ:
        s.write(PINGRESP);
        return true;
      case PacketType.DISCONNECT:
        s.conn.end();
        s.state = CLOSED;
        return false;
      case PacketType.PUBACK:
      case PacketType.PUBREC:
      case PacketType.PUBCOMP:
        return true; // nothing is sent to devices above QoS 0: a stray ack changes nothing
      default:
        return this.host.refuse(s, 'protocol_error'); // a second CONNECT [MQTT-3.1.0-2], or a packet only a server sends
    }
  }

  private received(s: DeviceSession, first: number, body: Buffer): void {
    const p = readPublish(first, body);
    // Nothing is retained here: its data is taken, the flag dropped.
    if (p.retain) this.host.hooks.onRetainCleared?.(s.id);
    const ack = p.qos === 0 ? null : s.pendingAck(p.qos === 1 ? PacketType.PUBACK : PacketType.PUBREC, p.messageId);
    if (p.qos === 2) {
      if (s.qos2?.has(p.messageId)) return s.settle(ack!); // stored already; PUBREC again [MQTT-4.3.3-2]
      (s.qos2 ??= new Set()).add(p.messageId);
    }
    this.host.deliver(s, { topic: p.topic, payload: p.payload, qos: p.qos }, ack, p.messageId);
  }

  private subscribe(s: DeviceSession, body: Buffer): void {
    const { messageId, filters } = readSubscribe(body, true);
    const granted: number[] = new Array<number>(filters.length);
    let left = filters.length;
    filters.forEach((f, i) => {
      this.host.auth.authorizeSubscribe(s as unknown as Client, f, (err, sub) => {
        if (s.state === CLOSED) return;
        if (err || !sub) granted[i] = 0x80;
        else {
          // Granted at QoS 0 [MQTT-3.9.3-1 allows less than asked]: this path delivers at QoS 0 only; a device
          // that needs QoS 1 deliveries connects with a persistent session, which aedes serves.
          granted[i] = 0;
          this.host.subscriptions.add(s, sub.topic);
        }
        if (--left === 0) s.write(subackPacket(messageId, granted));
      });
    });
  }
}
