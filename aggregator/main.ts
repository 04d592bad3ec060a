#!/usr/bin/env node
/**
 * `otlp-edge-aggregator`: one node of the cloud tier. The shared runner (runtime/cli) parses the command line, wires
 * signals and owns the exit code; the work lives in AggregatorNode (node.ts).
 */
import { VERSION } from '../protocol/version.js';
import { runBinary } from '../runtime/cli/run-binary.js';
import { createLogger } from '../runtime/log/logger.js';
import { loadAggregatorConfig } from './config.js';
import { AggregatorNode } from './node.js';

const HELP = `otlp-edge-aggregator ${VERSION} — receives agents' OTLP batches, keeps per-device state, serves the API

Usage:
  otlp-edge-aggregator --config aggregator.yaml            run a node
  otlp-edge-aggregator --config aggregator.yaml --check    validate the configuration and exit
  otlp-edge-aggregator leave --config aggregator.yaml      hand this node's devices off and leave the cluster
  otlp-edge-aggregator --help | --version

Every key of aggregator.yaml has a default (all of them: deploy/aggregator.yaml): without a config the
node takes uplink batches on 0.0.0.0:4317 from any agent and serves the API on 0.0.0.0:8080 to anyone (both logged
loudly; set auth.agent_tokens_file and auth.api_tokens_file, see SECURITY.md):
  GET /v1/devices  /v1/devices/{id}  /v1/devices/{id}/series?metric=&from=&to=  /v1/ring
  DELETE /v1/devices/{id}  POST /v1/cluster/leave (admin token)
  GET /metrics  /healthz  /readyz
Logs are pino JSON on stdout; the audit log (refused requests, token reloads, admin actions) is the logger
otlp-edge-aggregator.audit. SIGTERM/SIGINT stop cleanly; SIGHUP re-reads the token files.
`;

const code = await runBinary(
  {
    name: 'otlp-edge-aggregator',
    help: HELP,
    loadConfig: (path) => loadAggregatorConfig(path),
    logLevel: (cfg) => cfg.log.level,
    // The audit log keeps its own name and always writes at info (refusals, token reloads, admin actions).
    create: (cfg, log) => new AggregatorNode(cfg, log, createLogger('otlp-edge-aggregator.audit', 'info')),
    subcommands: {
      leave: async (argv) => (await import('./cli/leave.js')).runLeave(argv),
    },
  },
  process.argv.slice(2),
);
if (code >= 0) process.exitCode = code;
