import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { bufferDump, startAgent } from '../../helpers/agent-process.js';
import { seqsByDevice } from '../../helpers/otlp-readings.js';
import { tempDir } from '../../helpers/tmp.js';

/**
 * A device that keeps `window` QoS 1 readings in flight and records which seqs were acknowledged. Over MQTT 5 it
 * names its topic by a topic alias after the first publish.
 */
function device(port: number, id: string, window: number, protocolVersion: 4 | 5) {
  const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
    clientId: id,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    protocolVersion,
  });
  const acked: number[] = [];
  let seq = 0;
  let inFlight = 0;
  let stopped = false;
  const pump = () => {
    while (!stopped && client.connected && inFlight < window) {
      const s = seq++;
      inFlight++;
      client.publish(
        protocolVersion === 5 && s > 0 ? '' : `devices/${id}/telemetry`,
        JSON.stringify({ seq: s, temperature: 20 + (s % 50) / 10 }),
        protocolVersion === 5 ? { qos: 1, properties: { topicAlias: 1 } } : { qos: 1 },
        (err) => {
          inFlight--;
          if (!err) acked.push(s);
          pump();
        },
      );
    }
  };
  client.on('connect', pump);
  client.on('error', () => undefined);
  return {
    acked,
    stop: () => {
      stopped = true;
      client.end(true);
    },
  };
}

for (const protocolVersion of [4, 5] as const)
  test(`acked QoS 1 readings survive kill -9 of the agent under load (MQTT ${protocolVersion === 5 ? '5, topic aliases' : '3.1.1'})`, async (t) => {
    const dir = tempDir(t);
    const agent = await startAgent(dir, { batch: { max_delay: '50ms' } });
    const devices = Array.from({ length: 8 }, (_, i) => device(agent.mqttPort, `dev-${i}`, 20, protocolVersion));
    // Kill at a random moment while every device has messages in flight.
    const delay = 400 + Math.floor(Math.random() * 800);
    await new Promise((r) => setTimeout(r, delay));
    await agent.kill9();
    for (const d of devices) d.stop();
    const totalAcked = devices.reduce((n, d) => n + d.acked.length, 0);
    assert.ok(totalAcked > 100, `the load was real: ${totalAcked} acks before the kill at ${delay} ms`);

    // The restarted agent opens the same buffer; its dump must hold every acknowledged seq.
    const again = await startAgent(dir, {}, { mqttPort: agent.mqttPort, httpPort: agent.httpPort });
    assert.equal(await again.stop(), 0);
    const stored = seqsByDevice(bufferDump(again.configPath));
    for (let i = 0; i < devices.length; i++) {
      const have = new Set(stored.get(`dev-${i}`) ?? []);
      const lost = devices[i].acked.filter((s) => !have.has(s));
      assert.deepEqual(lost, [], `dev-${i}: acked but not stored (killed at ${delay} ms)`);
    }
  });
