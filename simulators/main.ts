#!/usr/bin/env node
/**
 * `otlp-edge-sim`: simulators and benchmarks. Each subcommand lives in its own module; this file only dispatches.
 */
import { parseArgs } from 'node:util';
import { judge, print } from './bench/report.js';

class UsageError extends Error {}

function positiveInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag}: expected a positive integer, got '${v}'`);
  return n;
}

const HELP = `otlp-edge-sim — simulators and benchmarks for otlp-edge

Usage:
  otlp-edge-sim fleet --url mqtt://127.0.0.1:1883 --devices N --rate R [--qos 0|1|2] [...]
                                   simulated devices over MQTT (otlp-edge-sim fleet --help for every flag)
  otlp-edge-sim gateways --endpoints HOST:PORT --gateways N --devices N [--rate R] [--duration D] [...]
                                   simulated agents on the uplink loading an aggregator cluster from one process
                                   (otlp-edge-sim gateways --help for every flag)
  otlp-edge-sim fault SCENARIO [--devices N] [--repeats N] [--outage D]   (otlp-edge-sim fault --help: the list)
                                   faults against real processes, ending with an accounting by device seq
                                   (acked, delivered, duplicated, dropped, lost); exit 1 when any is lost
  otlp-edge-sim bench [--quick] [--json FILE] [--markdown FILE] [--strict]
                                   every benchmark below in one run, one table with a verdict per budget
                                   (--quick: about a minute; --markdown: the table the README's performance
                                   section is made from; --strict: exit 1 when a budget is missed)
  otlp-edge-sim bench protocol     hot paths of the protocol package (payload decode, OTLP encode,
                                   zstd, OTLP decode, ring lookups) beside baselines from the same run
  otlp-edge-sim bench agent [--devices N] [--seconds S]
                                   readings/s the agent stores at QoS 0 and durable QoS 1, ack latency, RSS,
                                   bytes per reading, beside a bare aedes broker and a mosquitto relay
  otlp-edge-sim bench aggregator [--gateways N] [--seconds S] [--send] [--no-otlp]
                                   points/s one aggregator node ingests over uplink streams as agents send
                                   (--send: one batch per Send call, as older agents), and its CPU split; then
                                   the same batches over OTLP/gRPC and OTLP/HTTP beside the uplink's Send, and
                                   export to a local sink (points/s delivered, CPU per point with and without);
                                   --no-otlp skips those
  otlp-edge-sim bench cluster [--gateways N] [--seconds S] [--repeats R]
                                   1 node vs a 3-node cluster, measured in turns R times (default 3):
                                   points/s and CPU per point
  otlp-edge-sim bench uplink [--devices N] [--seconds S] [--burst-rate R] [--burst-seconds S] [--max-delay D]
                             [--outage-seconds S] [--agent PATH/TO/agent/main.js]
                                   the link at field load (N devices × 1 QoS 1 reading/s) and at a burst: bytes
                                   per point on the wire, requests/s, device → aggregator latency, ack latency,
                                   agent CPU, beside OTLP + gzip/zstd of the same readings; the backlog an
                                   outage leaves, packed
  otlp-edge-sim bench field [--sizes 1000,10000] [--settle-seconds S] [--latency-seconds S]
                                   the agent at field load (N lean devices × 1 QoS 1 reading/s, uplink connected
                                   to an aggregator): RSS beside the Node socket floor and mosquitto, heap per
                                   device, connect time, device → aggregator latency p50/p99/p999 (HDR) at the
                                   largest N, loss by device seq, uplink bytes per point
  otlp-edge-sim demo [--devices N] [--rate R] [--duration S] [--dir DIR] [--fresh]
                                   aggregator + agent + simulated devices with live figures (npm start);
                                   data and logs in DIR (default ./data/demo)
  otlp-edge-sim --help             this text

Benchmarks print one JSON line, then a table with each figure beside its baseline and budget.
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, sub] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(HELP);
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === 'fleet') {
    const { runFleetCommand } = await import('./fleet/cli.js');
    return runFleetCommand(argv.slice(1));
  }
  if (cmd === 'fault') {
    const { runFaultCommand } = await import('./fault/cli.js');
    return runFaultCommand(argv.slice(1));
  }
  if (cmd === 'gateways') {
    const { runGatewaysCommand } = await import('./gateways/cli.js');
    return runGatewaysCommand(argv.slice(1));
  }
  if (cmd === 'demo') {
    const { values } = parseArgs({
      args: argv.slice(1),
      options: {
        devices: { type: 'string', default: '200' },
        rate: { type: 'string' },
        duration: { type: 'string', default: '0' },
        dir: { type: 'string', default: './data/demo' },
        fresh: { type: 'boolean', default: false },
      },
    });
    const devices = positiveInt('--devices', values.devices);
    const rate = values.rate === undefined ? devices : positiveInt('--rate', values.rate);
    const duration = values.duration === '0' ? 0 : positiveInt('--duration', values.duration);
    const { runDemo } = await import('./demo.js');
    return runDemo({ dir: values.dir, devices, rate, duration, fresh: values.fresh });
  }
  if (cmd === 'bench') {
    if (sub === undefined || sub.startsWith('--')) {
      const { values } = parseArgs({
        args: argv.slice(1),
        options: {
          quick: { type: 'boolean', default: false },
          json: { type: 'string' },
          markdown: { type: 'string' },
          strict: { type: 'boolean', default: false },
        },
      });
      const { benchAll } = await import('./bench/all.js');
      let stop = false;
      process.once('SIGINT', () => {
        stop = true;
        process.stderr.write('stopping after the benchmark under way; what was measured is printed\n');
      });
      const report = await benchAll(
        {
          quick: values.quick,
          json: values.json,
          markdown: values.markdown,
          onPart: (name, s) => process.stderr.write(`bench ${name} done in ${Math.round(s)} s\n`),
        },
        () => stop,
      );
      print(report);
      return values.strict && judge(report).length > 0 ? 1 : 0;
    }
    if (sub === 'field') {
      const { values } = parseArgs({
        args: argv.slice(2),
        options: {
          sizes: { type: 'string', default: '1000,10000' },
          'settle-seconds': { type: 'string', default: '15' },
          'latency-seconds': { type: 'string', default: '30' },
        },
      });
      const { benchField } = await import('./bench/field.js');
      print(
        await benchField({
          sizes: values.sizes.split(',').map((s) => positiveInt('--sizes', s.trim())),
          settleSeconds: positiveInt('--settle-seconds', values['settle-seconds']),
          latencySeconds: positiveInt('--latency-seconds', values['latency-seconds']),
        }),
      );
      return 0;
    }
    if (sub === 'protocol') {
      const { benchProtocol } = await import('./bench/protocol.js');
      print(await benchProtocol());
      return 0;
    }
    if (sub === 'aggregator') {
      const { values } = parseArgs({
        args: argv.slice(2),
        options: {
          gateways: { type: 'string', default: '4' },
          seconds: { type: 'string', default: '10' },
          send: { type: 'boolean', default: false },
          'no-otlp': { type: 'boolean', default: false },
        },
      });
      const gateways = positiveInt('--gateways', values.gateways);
      const seconds = positiveInt('--seconds', values.seconds);
      const { benchAggregator } = await import('./bench/aggregator-report.js');
      print(await benchAggregator({ gateways, seconds, stream: !values.send, skipOtlp: values['no-otlp'] }));
      return 0;
    }
    if (sub === 'agent') {
      const { values } = parseArgs({
        args: argv.slice(2),
        options: { devices: { type: 'string', default: '1000' }, seconds: { type: 'string', default: '5' } },
      });
      const { benchAgent } = await import('./bench/agent.js');
      print(
        await benchAgent({
          devices: positiveInt('--devices', values.devices),
          seconds: positiveInt('--seconds', values.seconds),
        }),
      );
      return 0;
    }
    if (sub === 'cluster') {
      const { values } = parseArgs({
        args: argv.slice(2),
        options: {
          gateways: { type: 'string', default: '4' },
          seconds: { type: 'string', default: '8' },
          repeats: { type: 'string', default: '3' },
        },
      });
      const { benchCluster } = await import('./bench/cluster.js');
      print(
        await benchCluster({
          gateways: positiveInt('--gateways', values.gateways),
          seconds: positiveInt('--seconds', values.seconds),
          repeats: positiveInt('--repeats', values.repeats),
        }),
      );
      return 0;
    }
    if (sub === 'uplink') {
      const { values } = parseArgs({
        args: argv.slice(2),
        options: {
          devices: { type: 'string', default: '1000' },
          seconds: { type: 'string', default: '30' },
          'burst-rate': { type: 'string', default: '20000' },
          'burst-seconds': { type: 'string', default: '10' },
          'max-delay': { type: 'string' },
          'outage-seconds': { type: 'string', default: '20' },
          agent: { type: 'string' },
        },
      });
      const { benchUplink } = await import('./bench/uplink.js');
      print(
        await benchUplink({
          devices: positiveInt('--devices', values.devices),
          seconds: positiveInt('--seconds', values.seconds),
          burstRate: values['burst-rate'] === '0' ? 0 : positiveInt('--burst-rate', values['burst-rate']),
          burstSeconds: positiveInt('--burst-seconds', values['burst-seconds']),
          maxDelay: values['max-delay'],
          agentMain: values.agent,
          outageSeconds:
            values['outage-seconds'] === '0' ? 0 : positiveInt('--outage-seconds', values['outage-seconds']),
        }),
      );
      return 0;
    }
    process.stderr.write(
      `otlp-edge-sim bench: unknown benchmark '${sub ?? ''}'; expected one of: protocol, agent, field, aggregator, cluster, uplink\n`,
    );
    return 2;
  }
  process.stderr.write(`otlp-edge-sim: unknown command '${cmd}'; run 'otlp-edge-sim --help'\n`);
  return 2;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  if (!(e instanceof UsageError) && !(e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) throw e;
  process.stderr.write(`otlp-edge-sim: ${(e as Error).message}\n`);
  process.exitCode = 2;
}
