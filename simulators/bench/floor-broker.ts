/**
 * The "Node socket floor" of `otlp-edge-sim bench field`: the least a Node process can hold for N MQTT devices — a
 * socket per device and a loop that answers CONNECT with CONNACK, QoS 1 PUBLISH with PUBACK, PINGREQ with PINGRESP
 * and SUBSCRIBE with SUBACK, keeping nothing it is sent. Whatever the agent holds per device above this is its own
 * state (aedes' per-client machinery, the pipeline's maps), which is what the floor makes visible.
 *
 *   node dist/simulators/bench/floor-broker.js <mqtt port> <http port>
 *
 * Listens on 127.0.0.1 only. GET /metrics answers Prometheus text:
 *   floor_publishes_total          publishes received
 *   floor_connections              open connections
 *   floor_resident_memory_bytes    this process's RSS
 * SIGTERM exits.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { FrameSplitter } from '../../protocol/mqtt/frames.js';

const [mqttPort, httpPort] = process.argv.slice(2).map(Number);
if (!Number.isInteger(mqttPort) || !Number.isInteger(httpPort) || mqttPort < 1 || httpPort < 1) {
  process.stderr.write('usage: floor-broker.js <mqtt port> <http port>\n');
  process.exit(2);
}

const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]);
const PINGRESP = Buffer.from([0xd0, 0x00]);
let publishes = 0;
let connections = 0;

function serve(socket: Socket): void {
  connections++;
  socket.setNoDelay(true);
  const frames = new FrameSplitter();
  const onPacket = (first: number, body: Buffer) => answer(socket, first, body);
  socket.on('data', (chunk: Buffer) => {
    if (frames.push(chunk, onPacket) !== 'ok') socket.destroy(); // not MQTT
  });
  socket.on('error', () => undefined);
  socket.on('close', () => connections--);
}

function answer(socket: Socket, first: number, body: Buffer): void {
  switch (first >> 4) {
    case 1: // CONNECT
      socket.write(CONNACK);
      return;
    case 3: {
      // PUBLISH
      publishes++;
      if (((first >> 1) & 3) === 1) {
        const at = 2 + body.readUInt16BE(0);
        socket.write(Buffer.from([0x40, 0x02, body[at], body[at + 1]]));
      }
      return;
    }
    case 8: // SUBSCRIBE: granted QoS 0 for each filter would need parsing them; one is what devices send
      socket.write(Buffer.from([0x90, 0x03, body[0], body[1], 0x00]));
      return;
    case 12: // PINGREQ
      socket.write(PINGRESP);
      return;
    case 14: // DISCONNECT
      socket.end();
      return;
  }
}

const mqtt = createNetServer(serve);
const http = createHttpServer((req, res) => {
  if (req.url !== '/metrics') return void res.writeHead(404).end();
  const lines = [
    `floor_publishes_total ${publishes}`,
    `floor_connections ${connections}`,
    `floor_resident_memory_bytes ${process.memoryUsage.rss()}`,
  ];
  res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(lines.join('\n') + '\n');
});
await new Promise<void>((resolve) => mqtt.listen({ port: mqttPort, host: '127.0.0.1', backlog: 4096 }, resolve));
await new Promise<void>((resolve) => http.listen(httpPort, '127.0.0.1', resolve));
process.on('SIGTERM', () => process.exit(0));
