#!/usr/bin/env node
/**
 * `otlp-edge-agent`: the gateway process. The shared runner (runtime/cli) parses the command line, wires signals and
 * owns the exit code; the work lives in Agent (agent.ts) and the subcommands under cli/.
 */
import { VERSION } from '../protocol/version.js';
import { runBinary } from '../runtime/cli/run-binary.js';
import { Agent } from './agent.js';
import { loadAgentConfig } from './config.js';

const HELP = `otlp-edge-agent ${VERSION} — takes device telemetry over MQTT and stores it durably in a capped LevelDB buffer

Usage:
  otlp-edge-agent --config agent.yaml              run the agent
  otlp-edge-agent --config agent.yaml --check      validate the configuration and exit
  otlp-edge-agent passwd --file devices.passwd DEVICE_ID
                                                   add or replace a device credential (password on stdin)
  otlp-edge-agent buffer stats|dump --config agent.yaml
                                                   inspect the buffer (dump: one OTLP/JSON request per batch per line)
  otlp-edge-agent --help | --version

Configuration is YAML (every key at its default: deploy/agent.yaml), so an empty
file or no --config runs an embedded broker on 0.0.0.0:1883 that refuses anonymous devices, with /metrics,
/healthz and /readyz on 127.0.0.1:9464. Logs are pino JSON on stdout.

Signals: SIGTERM/SIGINT commit the open batch and stop cleanly; SIGHUP re-reads the credentials file.
`;

const code = await runBinary(
  {
    name: 'otlp-edge-agent',
    help: HELP,
    loadConfig: (path) => loadAgentConfig(path),
    logLevel: (cfg) => cfg.log.level,
    create: (cfg, log) => new Agent(cfg, log),
    subcommands: {
      passwd: async (argv) => (await import('./cli/passwd.js')).runPasswd(argv),
      buffer: async (argv) => (await import('./cli/buffer.js')).runBuffer(argv),
    },
  },
  process.argv.slice(2),
);
if (code >= 0) process.exitCode = code;
