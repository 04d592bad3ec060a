import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generate, parser as mqttParser, type Packet } from 'mqtt-packet';
import { MalformedPacket, readConnect } from '../../../../protocol/mqtt/frames.js';
import { fitReasonString } from '../../../../protocol/mqtt/properties.js';
import {
  ack5,
  connack5,
  disconnect5,
  publish5,
  readDisconnect5,
  readPublish5,
  readPubrel5,
  readSubscribe5,
  readUnsubscribe5,
  suback5,
} from '../../../../protocol/mqtt/v5.js';

/** The body of a packet mqtt-packet (MQTT.js's codec) writes at protocol level 5. */
function body(packet: Record<string, unknown>): { first: number; body: Buffer } {
  const b = generate(packet as never, { protocolVersion: 5 });
  let i = 1;
  while (b[i] & 0x80) i++;
  return { first: b[0], body: b.subarray(i + 1) };
}

/** What mqtt-packet reads from bytes this codec wrote. */
function parsed(bytes: Buffer): Packet {
  const p = mqttParser({ protocolVersion: 5 });
  let out: Packet | undefined;
  p.on('packet', (x: Packet) => (out = x));
  p.on('error', (e: Error) => assert.fail(e));
  p.parse(bytes);
  return out!;
}

test('an MQTT 5 CONNECT with properties, and a will with properties', () => {
  const c = readConnect(
    body({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 5,
      clean: false,
      keepalive: 30,
      clientId: 'dev-1',
      username: 'dev-1',
      password: Buffer.from('secret'),
      properties: { sessionExpiryInterval: 300, receiveMaximum: 10, userProperties: { a: '1' } },
      will: {
        topic: 'devices/dev-1/events',
        payload: Buffer.from('{"body":"gone"}'),
        qos: 1,
        retain: false,
        properties: { willDelayInterval: 5, contentType: 'application/json' },
      },
    }).body,
  );
  assert.equal(c.protocolLevel, 5);
  assert.equal(c.clean, false);
  assert.equal(c.clientId, 'dev-1');
  assert.equal(String(c.password), 'secret');
  assert.equal(c.properties?.sessionExpiry, 300);
  assert.equal(c.properties?.receiveMaximum, 10);
  assert.deepEqual(c.properties?.userProperties, [['a', '1']]);
  assert.equal(c.willMessage?.topic, 'devices/dev-1/events');
  assert.equal(c.willMessage?.qos, 1);
  assert.equal(c.willMessage?.properties?.willDelay, 5);
  assert.equal(c.willMessage?.properties?.contentType, 'application/json');
});

test('PUBLISH properties: topic alias with an empty topic, content type, user properties in order', () => {
  const { first, body: b } = body({
    cmd: 'publish',
    topic: '',
    payload: Buffer.from('{"v":1}'),
    qos: 1,
    messageId: 7,
    properties: { topicAlias: 2, contentType: 'application/cbor', userProperties: { k: ['x', 'y'], z: '1' } },
  });
  const p = readPublish5(first, b);
  assert.equal(p.topic, '');
  assert.equal(p.messageId, 7);
  assert.equal(p.properties.topicAlias, 2);
  assert.equal(p.properties.contentType, 'application/cbor');
  assert.deepEqual(p.properties.userProperties, [
    ['k', 'x'],
    ['k', 'y'],
    ['z', '1'],
  ]);
  assert.equal(String(p.payload), '{"v":1}');
});

test('a property twice, a property the packet may not carry, an empty topic without alias: refused with a reason code', () => {
  const base = body({ cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 0 });
  // topic "t", then a property list holding content type twice
  const twice = Buffer.concat([
    Buffer.from([0, 1, 0x74]),
    Buffer.from([8, 0x03, 0, 1, 0x61, 0x03, 0, 1, 0x62]),
    Buffer.from('x'),
  ]);
  assert.throws(
    () => readPublish5(base.first, twice),
    (e: MalformedPacket) => e.reasonCode === 0x82,
  );
  const sessionExpiryInPublish = Buffer.concat([Buffer.from([0, 1, 0x74]), Buffer.from([5, 0x11, 0, 0, 0, 1])]);
  assert.throws(() => readPublish5(base.first, sessionExpiryInPublish), /not allowed here/);
  const empty = Buffer.concat([Buffer.from([0, 0]), Buffer.from([0])]);
  assert.throws(
    () => readPublish5(base.first, empty),
    (e: MalformedPacket) => e.reasonCode === 0x82,
  );
  const pastEnd = Buffer.concat([Buffer.from([0, 1, 0x74]), Buffer.from([9, 0x03, 0, 1])]);
  assert.throws(
    () => readPublish5(base.first, pastEnd),
    (e: MalformedPacket) => e.reasonCode === 0x81,
  );
});

test('SUBSCRIBE options: No Local and QoS; reserved bits are malformed', () => {
  const s = readSubscribe5(
    body({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: 'a/+', qos: 1, nl: true }] }).body,
  );
  assert.deepEqual(s.filters, [{ topic: 'a/+', qos: 1, noLocal: true }]);
  const reserved = Buffer.from([0, 3, 0, 0, 3, 0x61, 0x2f, 0x62, 0xc0]);
  assert.throws(() => readSubscribe5(reserved), MalformedPacket);
});

test('what the broker writes is read back by mqtt-packet as sent', () => {
  const connack = parsed(
    connack5(0, true, [
      [0x21, 100],
      [0x22, 16],
      [0x27, 333_824],
      [0x25, 0],
      [0x12, 'assigned-1'],
    ]),
  ) as { sessionPresent: boolean; reasonCode: number; properties: Record<string, unknown> };
  assert.equal(connack.sessionPresent, true);
  assert.deepEqual(connack.properties, {
    receiveMaximum: 100,
    topicAliasMaximum: 16,
    maximumPacketSize: 333_824,
    retainAvailable: false,
    assignedClientIdentifier: 'assigned-1',
  });
  const refused = parsed(ack5(4, 9, 0x97, 'over the rate')) as {
    messageId: number;
    reasonCode: number;
    properties: { reasonString: string };
  };
  assert.deepEqual(
    [refused.messageId, refused.reasonCode, refused.properties.reasonString],
    [9, 0x97, 'over the rate'],
  );
  assert.deepEqual(ack5(4, 9, 0), Buffer.from([0x40, 2, 0, 9]), 'success: the short form');
  assert.deepEqual((parsed(suback5(5, [0, 0x87])) as { granted: number[] }).granted, [0, 0x87]);
  assert.equal((parsed(disconnect5(0x93)) as { reasonCode: number }).reasonCode, 0x93);
  const pub = parsed(publish5('devices/d/errors', Buffer.from('{}'))) as { topic: string; payload: Buffer };
  assert.deepEqual([pub.topic, String(pub.payload)], ['devices/d/errors', '{}']);
});

test('a reason string is cut to whole characters', () => {
  assert.equal(fitReasonString('ab€cd', 4), 'ab');
  assert.equal(fitReasonString('short', 100), 'short');
});

test('random bodies: every reader either reads or throws MalformedPacket, never anything else', () => {
  let seed = 11;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const readers: ((b: Buffer) => unknown)[] = [
    (b) => readPublish5(0x32, b),
    (b) => readPublish5(0x30, b),
    (b) => readSubscribe5(b),
    (b) => readUnsubscribe5(b),
    (b) => readDisconnect5(b),
    (b) => readPubrel5(b),
    (b) => readConnect(b),
  ];
  for (let i = 0; i < 20_000; i++) {
    // Mostly short, with a plausible head: a 1-byte topic "t", a message id, then a random property list.
    const tail = Array.from({ length: rand(24) }, () => rand(256));
    const body = Buffer.from(rand(2) === 0 ? tail : [0, 1, 0x74, 0, 1, ...tail]);
    for (const read of readers) {
      try {
        read(body);
      } catch (e) {
        assert.ok(e instanceof MalformedPacket, `${String(e)} for ${body.toString('hex')}`);
      }
    }
  }
});
