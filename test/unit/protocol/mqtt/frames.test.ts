import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generate, parser as mqttParser, type Packet } from 'mqtt-packet';
import {
  ackPacket,
  FrameSplitter,
  MalformedPacket,
  PacketType,
  publishPacket,
  readConnect,
  readPublish,
  readSubscribe,
  subackPacket,
  validFilter,
} from '../../../../protocol/mqtt/frames.js';

/** mqtt-packet (the parser aedes and MQTT.js use) as the independent reader of what frames.ts writes. */
function parse(bytes: Buffer): Packet[] {
  const p = mqttParser({ protocolVersion: 4 });
  const out: Packet[] = [];
  p.on('packet', (packet) => out.push(packet));
  p.on('error', (err) => {
    throw err;
  });
  p.parse(bytes);
  return out;
}

function split(stream: Buffer, chunkSize: number, max?: number) {
  const s = new FrameSplitter(max);
  const packets: { type: number; body: Buffer }[] = [];
  let result = 'ok';
  for (let i = 0; i < stream.length && result === 'ok'; i += chunkSize) {
    result = s.push(stream.subarray(i, i + chunkSize), (first, body) => {
      packets.push({ type: first >> 4, body: Buffer.from(body) });
    });
  }
  return { packets, result, pending: s.pending };
}

test('the splitter yields the same packets whatever the chunking, including 2- and 3-byte length fields', () => {
  const big = Buffer.alloc(20_000, 7); // remaining length needs 3 bytes
  const mid = Buffer.alloc(300, 1); // 2 bytes
  const stream = Buffer.concat([
    generate({ cmd: 'pingreq' }),
    generate({ cmd: 'publish', topic: 'a/b', payload: mid, qos: 1, messageId: 9, retain: false, dup: false }),
    generate({ cmd: 'publish', topic: 'c', payload: big, qos: 0, retain: false, dup: false }),
    generate({ cmd: 'disconnect' }),
  ]);
  for (const size of [1, 2, 3, 7, 64, 1000, stream.length]) {
    const { packets, result, pending } = split(stream, size);
    assert.equal(result, 'ok');
    assert.equal(pending, 0);
    assert.deepEqual(
      packets.map((p) => p.type),
      [PacketType.PINGREQ, PacketType.PUBLISH, PacketType.PUBLISH, PacketType.DISCONNECT],
      `chunks of ${size}`,
    );
    assert.deepEqual(readPublish(0x32, packets[1].body).payload, mid);
    assert.deepEqual(readPublish(0x30, packets[2].body).payload, big);
  }
});

test('the splitter refuses a length over the bound from the header alone, and a five-byte length field', () => {
  const header = Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]); // claims 268,435,455 bytes, sends none
  assert.equal(split(header, 5, 1024).result, 'too_large');
  assert.equal(split(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]), 6).result, 'malformed');
  const stop = new FrameSplitter();
  let seen = 0;
  stop.push(Buffer.concat([generate({ cmd: 'pingreq' }), generate({ cmd: 'pingreq' })]), () => {
    seen++;
    return false;
  });
  assert.equal(seen, 1, 'returning false stops the splitting');
});

test('CONNECT is read as mqtt-packet wrote it; rule-breaking flags are malformed', () => {
  const body = (packet: Parameters<typeof generate>[0]) => generate(packet).subarray(2);
  const c = readConnect(
    body({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId: 'dev-1',
      keepalive: 30,
      username: 'dev-1',
      password: Buffer.from('s3cret'),
    }),
  );
  assert.deepEqual(c, {
    protocolName: 'MQTT',
    protocolLevel: 4,
    clean: true,
    keepalive: 30,
    clientId: 'dev-1',
    will: false,
    username: 'dev-1',
    password: Buffer.from('s3cret'),
  });
  const withWill = readConnect(
    body({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: false,
      clientId: 'x',
      keepalive: 0,
      will: { topic: 'w', payload: Buffer.from('bye'), qos: 1, retain: false },
    }),
  );
  assert.equal(withWill.will, true);
  assert.equal(withWill.clean, false);
  const v5 = readConnect(
    generate(
      { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, clientId: 'x', keepalive: 5 },
      {
        protocolVersion: 5,
      },
    ).subarray(2),
  );
  assert.equal(v5.protocolLevel, 5);

  const good = body({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: true,
    clientId: 'x',
    keepalive: 5,
  });
  const reserved = Buffer.from(good);
  reserved[7] |= 0x01;
  assert.throws(() => readConnect(reserved), MalformedPacket);
  assert.throws(() => readConnect(good.subarray(0, good.length - 1)), MalformedPacket, 'client id cut short');
  assert.throws(() => readConnect(Buffer.concat([good, Buffer.from([0])])), MalformedPacket, 'trailing bytes');
});

test('PUBLISH: topic, QoS, id and payload; wildcards, QoS 3, id 0 and bad UTF-8 are malformed', () => {
  const wire = generate({
    cmd: 'publish',
    topic: 'devices/d1/telemetry',
    payload: Buffer.from('{"v":1}'),
    qos: 2,
    messageId: 513,
    retain: true,
    dup: true,
  });
  const p = readPublish(wire[0], wire.subarray(2));
  assert.deepEqual(
    { ...p, payload: String(p.payload) },
    { topic: 'devices/d1/telemetry', qos: 2, retain: true, dup: true, messageId: 513, payload: '{"v":1}' },
  );
  const body = (topic: Buffer, extra: number[] = []) =>
    Buffer.concat([Buffer.from([0, topic.length]), topic, Buffer.from(extra)]);
  assert.throws(() => readPublish(0x30, body(Buffer.from('a/+/b'))), MalformedPacket);
  assert.throws(() => readPublish(0x30, body(Buffer.from('a/#'))), MalformedPacket);
  assert.throws(() => readPublish(0x36, body(Buffer.from('a'), [0, 1])), MalformedPacket, 'QoS 3');
  assert.throws(() => readPublish(0x32, body(Buffer.from('a'), [0, 0])), MalformedPacket, 'message id 0');
  assert.throws(() => readPublish(0x30, body(Buffer.from([0x61, 0xff]))), MalformedPacket, 'not UTF-8');
  assert.throws(() => readPublish(0x30, body(Buffer.from([0x61, 0x00]))), MalformedPacket, 'U+0000');
  assert.throws(() => readPublish(0x32, Buffer.from([0, 5, 0x61])), MalformedPacket, 'topic runs past the end');
});

test('SUBSCRIBE and UNSUBSCRIBE filters; filter grammar', () => {
  const sub = generate({
    cmd: 'subscribe',
    messageId: 7,
    subscriptions: [
      { topic: 'devices/d1/errors', qos: 1 },
      { topic: 'devices/+/events', qos: 0 },
    ],
  });
  assert.deepEqual(readSubscribe(sub.subarray(2), true), {
    messageId: 7,
    filters: [
      { topic: 'devices/d1/errors', qos: 1 },
      { topic: 'devices/+/events', qos: 0 },
    ],
  });
  const unsub = generate({ cmd: 'unsubscribe', messageId: 8, unsubscriptions: ['a/#'] });
  assert.deepEqual(readSubscribe(unsub.subarray(2), false), { messageId: 8, filters: [{ topic: 'a/#', qos: 0 }] });
  assert.throws(() => readSubscribe(Buffer.from([0, 1]), true), MalformedPacket, 'no filter');
  for (const f of ['#', 'a/#', '+', 'a/+/b', '+/+', '/']) assert.ok(validFilter(f), f);
  for (const f of ['', 'a#', 'a/#/b', 'a+', 'a/b+/c']) assert.ok(!validFilter(f), f);
});

test('what frames.ts writes, mqtt-packet reads back', () => {
  const [puback, pubrec, pubrel, pubcomp, unsuback, suback, pub0, pub1] = parse(
    Buffer.concat([
      ackPacket(PacketType.PUBACK, 1),
      ackPacket(PacketType.PUBREC, 2),
      ackPacket(PacketType.PUBREL, 3),
      ackPacket(PacketType.PUBCOMP, 4),
      ackPacket(PacketType.UNSUBACK, 5),
      subackPacket(6, [0, 0x80]),
      publishPacket('devices/d1/errors', Buffer.from('{"code":"X"}')),
      publishPacket('t', Buffer.alloc(200, 3), 1, 77),
    ]),
  );
  assert.deepEqual(
    [puback, pubrec, pubrel, pubcomp, unsuback].map((p) => [p.cmd, (p as { messageId?: number }).messageId]),
    [
      ['puback', 1],
      ['pubrec', 2],
      ['pubrel', 3],
      ['pubcomp', 4],
      ['unsuback', 5],
    ],
  );
  assert.deepEqual((suback as { granted: number[] }).granted, [0, 128]);
  assert.equal((pub0 as { topic: string }).topic, 'devices/d1/errors');
  assert.equal(String((pub0 as { payload: Buffer }).payload), '{"code":"X"}');
  assert.equal((pub1 as { messageId: number }).messageId, 77);
  assert.equal((pub1 as { qos: number }).qos, 1);
  assert.equal((pub1 as { payload: Buffer }).payload.length, 200);
});
