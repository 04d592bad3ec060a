#!/usr/bin/env node
/**
 * `otlp-edge-aggregator`: one node of the cloud tier. Parses the command line, wires signals, owns the exit code.
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { ConfigError, OtlpEdgeError } from '../protocol/errors.js';
import { VERSION } from '../protocol/version.js';
import { loadAggregatorConfig } from './config.js';
import { AggregatorNode } from './node.js';

const HELP = `otlp-edge-aggregator ${VERSION} — receives agents' OTLP batches, keeps per-device state, serves the API

Usage:
  otlp-edge-aggregator --config aggregator.yaml            run a node
  otlp-edge-aggregator --config aggregator.yaml --check    validate the configuration and exit
  otlp-edge-aggregator --help | --version

Every key of aggregator.yaml has a default (keys: the README's configuration section): without a config the
node takes uplink batches on 0.0.0.0:4317 from any agent and serves the API on 0.0.0.0:8080 to anyone (both logged
loudly; set auth.agent_tokens_file and auth.api_tokens_file, see SECURITY.md):
  GET /v1/devices  /v1/devices/{id}  /v1/devices/{id}/series?metric=&from=&to=  /v1/ring
  DELETE /v1/devices/{id} (admin token)
  GET /metrics  /healthz  /readyz
Logs are pino JSON on stdout; the audit log (refused requests, token reloads, admin actions) is the logger
otlp-edge-aggregator.audit. SIGTERM/SIGINT stop cleanly; SIGHUP re-reads the token files.
`;

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: {
      config: { type: 'string', short: 'c', default: '' },
      check: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      version: { type: 'boolean', short: 'v', default: false },
    } }));
  } catch (e) {
    process.stderr.write(`otlp-edge-aggregator: ${(e as Error).message}\nRun 'otlp-edge-aggregator --help' for usage.\n`);
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
  let cfg;
  try {
    cfg = loadAggregatorConfig(values.config);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.code}: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (values.check) {
    process.stdout.write(`${values.config || '(defaults)'}: configuration is valid\n`);
    return 0;
  }
  const log = pino({ name: 'otlp-edge-aggregator', level: cfg.log.level });
  // The audit log keeps its own name and always writes at info (refusals, token reloads, admin actions).
  const audit = pino({ name: 'otlp-edge-aggregator.audit', level: 'info' });
  const node = new AggregatorNode(cfg, log, audit);
  let signals = 0;
  const stop = (signal: string) => {
    if (++signals > 1) process.exit(130);
    log.info({ signal }, 'stopping');
    node.shutdown().then(() => process.exit(0), (err: Error) => {
      log.error({ err: err.message }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => node.reload());
  try {
    await node.start();
  } catch (e) {
    const err = e as OtlpEdgeError;
    log.error({ err: err.message, code: err.code }, 'aggregator failed to start');
    await node.shutdown().catch(() => undefined);
    return 1;
  }
  return -1;
}

const code = await main(process.argv.slice(2));
if (code >= 0) process.exitCode = code;
