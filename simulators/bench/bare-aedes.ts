/**
 * The "bare aedes" baseline of `otlp-edge-sim bench agent`: the same broker library the agent embeds, with nothing
 * behind it. It counts the publishes it receives (in `authorizePublish`, the hook where the agent does its work,
 * answering at once) and acknowledges QoS 1 as aedes does by default, so the agent's figure beside this one shows
 * what decoding, batching and durable storage cost on top of MQTT itself.
 *
 *   node dist/simulators/bench/bare-aedes.js <mqtt port> <http port>
 *
 * Listens on 127.0.0.1 only. GET /metrics answers Prometheus text:
 *   bare_aedes_publishes_total{qos="0|1|2"}   publishes received from clients
 *   bare_aedes_resident_memory_bytes          this process's RSS
 * SIGTERM closes the broker and exits.
 */
import { Aedes } from 'aedes';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';

const [mqttPort, httpPort] = process.argv.slice(2).map(Number);
if (!Number.isInteger(mqttPort) || !Number.isInteger(httpPort) || mqttPort < 1 || httpPort < 1) {
  process.stderr.write('usage: bare-aedes.js <mqtt port> <http port>\n');
  process.exit(2);
}

const received = [0, 0, 0];
const aedes = await Aedes.createBroker({
  authorizePublish: (client, packet, done) => {
    if (client !== null) received[packet.qos]++;
    done(null);
  },
  // The agent's settings (agent/receiver/broker.ts), so both run the same broker.
  drainTimeout: 30_000,
  heartbeatInterval: 3_600_000,
});
const mqtt = createNetServer(aedes.handle);
const http = createHttpServer((req, res) => {
  if (req.url !== '/metrics') return void res.writeHead(404).end();
  const lines = received.map((n, qos) => `bare_aedes_publishes_total{qos="${qos}"} ${n}`);
  lines.push(`bare_aedes_resident_memory_bytes ${process.memoryUsage.rss()}`);
  res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(lines.join('\n') + '\n');
});
await new Promise<void>((resolve) => mqtt.listen(mqttPort, '127.0.0.1', resolve));
await new Promise<void>((resolve) => http.listen(httpPort, '127.0.0.1', resolve));

process.on('SIGTERM', () => {
  http.close();
  mqtt.close();
  aedes.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
