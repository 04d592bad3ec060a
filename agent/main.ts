#!/usr/bin/env node
/**
 * `otlp-edge-agent`: the gateway process. This file parses the command line, wires signals and owns the exit code;
 * the work lives in Agent (agent.ts) and the subcommands under cli/.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../protocol/errors.js';
import { VERSION } from '../protocol/version.js';
import { Agent } from './agent.js';
import { loadAgentConfig } from './config.js';
import { createLogger } from './log.js';

const HELP = `otlp-edge-agent ${VERSION} — takes device telemetry over MQTT and stores it durably in a capped LevelDB buffer

Usage:
  otlp-edge-agent --config agent.yaml              run the agent
  otlp-edge-agent --config agent.yaml --check      validate the configuration and exit
  otlp-edge-agent passwd --file devices.passwd DEVICE_ID
                                                   add or replace a device credential (password on stdin)
  otlp-edge-agent buffer stats|dump --config agent.yaml
                                                   inspect the buffer (dump: one OTLP/JSON request per batch per line)
  otlp-edge-agent --help | --version

Configuration is YAML (keys: the README's configuration section); every key has a default, so an empty
file or no --config runs an embedded broker on 0.0.0.0:1883 that refuses anonymous devices, with /metrics,
/healthz and /readyz on 127.0.0.1:9464. Logs are pino JSON on stdout.

Signals: SIGTERM/SIGINT commit the open batch and stop cleanly; SIGHUP re-reads the credentials file.
`;

async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: {
      config: { type: 'string', short: 'c', default: '' },
      check: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      version: { type: 'boolean', short: 'v', default: false },
    } }));
  } catch (e) {
    process.stderr.write(`otlp-edge-agent: ${(e as Error).message}\nRun 'otlp-edge-agent --help' for usage.\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const cfg = loadAgentConfig(values.config);
  if (values.check) {
    process.stdout.write(`${values.config || '(defaults)'}: configuration is valid\n`);
    return 0;
  }
  const log = createLogger(cfg.log.level);
  const agent = new Agent(cfg, log);
  let signals = 0;
  const stop = (signal: string) => {
    if (++signals > 1) {
      log.warn({ signal }, 'second signal: exiting without waiting for the flush');
      process.exit(130);
    }
    log.info({ signal }, 'stopping');
    agent.shutdown().then(() => process.exit(0), (err: Error) => {
      log.error({ err: err.message }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    agent.reload().then(() => log.info('credentials reloaded'), (err: Error) => log.error({ err: err.message }, 'credentials reload failed; keeping the previous ones'));
  });
  try {
    await agent.start();
  } catch (e) {
    log.error({ err: (e as Error).message, code: (e as { code?: string }).code }, 'agent failed to start');
    await agent.shutdown().catch(() => undefined);
    return 1;
  }
  return -1; // keep running until a signal
}

async function main(argv: string[]): Promise<number> {
  try {
    if (argv[0] === 'passwd') {
      const { runPasswd } = await import('./cli/passwd.js');
      return await runPasswd(argv.slice(1));
    }
    if (argv[0] === 'buffer') {
      const { runBuffer } = await import('./cli/buffer.js');
      return await runBuffer(argv.slice(1));
    }
    return await run(argv);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.code}: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

const code = await main(process.argv.slice(2));
if (code >= 0) process.exitCode = code;
