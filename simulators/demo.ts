/**
 * `npm start` / `otlp-edge-sim demo`: the whole pipeline on one machine — an aggregator, an agent with its embedded
 * broker, and a fleet of simulated devices — with live figures and the address to query. Ctrl-C stops everything.
 * The aggregator and agent run as their real binaries (child processes); their logs go to files in the data folder
 * so the terminal keeps one live line.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Fleet } from './fleet/fleet.js';
import { freeLoopbackPort, scrapeMetric } from './bench/util.js';
import { startBinary, type ChildService } from '../runtime/process/child.js';

export interface DemoOptions {
  /** Folder for the demo's data and logs; default ./data/demo. */
  dir: string;
  /** Simulated devices; default 200. */
  devices: number;
  /** Readings per second across the fleet; default one per device. */
  rate: number;
  /** Seconds to run, then stop by itself; default 0 = until Ctrl-C. */
  duration: number;
  /** Start from an empty data folder; default false (the buffer and state of the last run are kept). */
  fresh: boolean;
}

const dist = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));

/** The preferred port when it is free on 127.0.0.1, else any free one. */
async function port(preferred: number): Promise<number> {
  const free = await new Promise<boolean>((ok) => {
    const s = createServer();
    s.once('error', () => ok(false));
    s.listen(preferred, '127.0.0.1', () => s.close(() => ok(true)));
  });
  return free ? preferred : freeLoopbackPort();
}

async function metrics(url: string): Promise<string> {
  return fetch(url).then(
    (r) => r.text(),
    () => '',
  );
}

export async function runDemo(o: DemoOptions, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const dir = resolve(o.dir);
  if (o.fresh) rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const [grpcPort, apiPort, mqttPort, agentHttp] = [
    await port(4317),
    await port(8080),
    await port(1883),
    await port(9464),
  ];
  const say = (line: string) => out.write(`${line}\n`);

  say('otlp-edge demo: aggregator + agent + simulated devices, all on 127.0.0.1');
  say(
    `  aggregator   gRPC uplink 127.0.0.1:${grpcPort}   API http://127.0.0.1:${apiPort}   (log: ${join(dir, 'aggregator.log')})`,
  );
  say(
    `  agent        MQTT 127.0.0.1:${mqttPort}   metrics http://127.0.0.1:${agentHttp}/metrics   (log: ${join(dir, 'agent.log')})`,
  );
  say(`  devices      ${o.devices} simulated, ${o.rate} readings/s, QoS 1, JSON`);
  say(`  data         ${dir}`);
  say(
    '  WARNING: the demo agent accepts devices WITHOUT credentials (mqtt.broker.allow_anonymous: true) — development only.',
  );

  let agg: ChildService;
  let agent: ChildService;
  try {
    // Logs go to files in the data folder, so the terminal keeps one live line.
    agg = await startBinary(
      dir,
      'aggregator',
      dist('aggregator/main.js'),
      {
        node: { id: 'demo-agg', data_dir: join(dir, 'aggregator') },
        grpc: { host: '127.0.0.1', port: grpcPort },
        otlp_http: { enabled: false },
        api: { host: '127.0.0.1', port: apiPort },
        devices: { offline_after: '15s' },
        // Something for the page's alerts to show: the warmest simulated rooms.
        alerts: {
          evaluation_interval: '2s',
          rules: { name: 'HighTemperature', metric: 'temperature', op: '>', value: 25, for: '20s' },
        },
      },
      `http://127.0.0.1:${apiPort}/readyz`,
      { logFile: join(dir, 'aggregator.log'), keepOutput: 20_000 },
    );
    agent = await startBinary(
      dir,
      'agent',
      dist('agent/main.js'),
      {
        agent: { id: 'demo-gw', data_dir: join(dir, 'agent'), attributes: { site: 'demo' } },
        mqtt: { broker: { tcp: { host: '127.0.0.1', port: mqttPort }, allow_anonymous: true } },
        uplink: { endpoints: [`127.0.0.1:${grpcPort}`] },
        http: { host: '127.0.0.1', port: agentHttp },
      },
      `http://127.0.0.1:${agentHttp}/readyz`,
      { logFile: join(dir, 'agent.log'), keepOutput: 20_000 },
    ).catch(async (e) => {
      await agg.stop();
      throw e;
    });
  } catch (e) {
    say(`could not start: ${(e as Error).message.split('\n')[0]}; see the logs in ${dir}`);
    return 1;
  }
  const children = [agg, agent];
  let fleet: Fleet | null = null;
  let stopping: Promise<number> | null = null;
  let ticker: NodeJS.Timeout | null = null;

  const stop = (code: number): Promise<number> =>
    (stopping ??= (async () => {
      if (ticker) clearInterval(ticker);
      out.write('\n');
      if (fleet) {
        const s = await fleet.stop();
        say(`devices sent ${s.sent} readings, ${s.acked} acknowledged by the agent`);
      }
      await agent.stop();
      await agg.stop();
      say(`stopped. Data kept in ${dir} (npm start -- --fresh starts over).`);
      return code;
    })());

  fleet = new Fleet({
    url: `mqtt://127.0.0.1:${mqttPort}`,
    devices: o.devices,
    rate: o.rate,
    qos: 1,
    prefix: 'demo-',
    eventRate: 0.002,
  });
  await fleet.start();
  say('');
  say(`Open the fleet page:  http://127.0.0.1:${apiPort}/`);
  say(
    `Query the aggregator: http://127.0.0.1:${apiPort}/v1/devices   http://127.0.0.1:${apiPort}/v1/devices/${fleet.deviceIds[0]}`,
  );
  say(
    `                      http://127.0.0.1:${apiPort}/v1/devices/${fleet.deviceIds[0]}/series?metric=temperature   http://127.0.0.1:${apiPort}/v1/ring`,
  );
  say(`Live stream:          ws://127.0.0.1:${apiPort}/v1/stream?device=${fleet.deviceIds[0]}&events=true`);
  say('Press Ctrl-C to stop.\n');

  let last = { readings: 0, at: Date.now() };
  const tick = async () => {
    const [am, gm] = await Promise.all([
      metrics(`http://127.0.0.1:${agentHttp}/metrics`),
      metrics(`http://127.0.0.1:${apiPort}/metrics`),
    ]);
    const readings = scrapeMetric(am, 'otlp_edge_agent_readings_received_total');
    const now = Date.now();
    const rate = ((readings - last.readings) * 1000) / Math.max(1, now - last.at);
    last = { readings, at: now };
    const line = `readings in ${Math.round(rate).toLocaleString('en-US')}/s (total ${readings.toLocaleString('en-US')}) | batches uplinked ${scrapeMetric(am, 'otlp_edge_agent_uplink_batches_total{outcome="ok"}')} | backlog ${scrapeMetric(am, 'otlp_edge_agent_uplink_backlog_batches')} | devices online ${scrapeMetric(gm, 'otlp_edge_aggregator_devices_online')}`;
    if ((out as { isTTY?: boolean }).isTTY) out.write(`\r\x1b[2K${line}`);
    else say(line);
  };
  ticker = setInterval(() => void tick(), 1000);
  const onSignal = () => void stop(0).then((code) => process.exit(code));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  for (const c of children)
    void c.exited.then((code) => {
      if (!stopping) {
        say(`\na ${c === agg ? 'aggregator' : 'agent'} process exited (code ${code}); see its log in ${dir}`);
        void stop(1).then((code2) => process.exit(code2));
      }
    });
  if (o.duration > 0) {
    await new Promise((r) => setTimeout(r, o.duration * 1000));
    await tick();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    return stop(0);
  }
  return new Promise<number>(() => undefined); // until a signal
}
