import { parseArgs } from 'node:util';
import { ConfigError } from '../../protocol/errors.js';
import { VERSION } from '../../protocol/version.js';
import { createLogger, type Logger } from '../log/logger.js';

/** What a binary runs: a component with a lifecycle (the agent, an aggregator node). */
export interface Service {
  /** Opens storage and listeners; rejects when the process cannot run (exit code 1). */
  start(): Promise<void>;
  /** Stops intake, flushes, closes storage. Idempotent. */
  stop(): Promise<void>;
  /** SIGHUP: read credential and token files again. */
  reload?(): Promise<void> | void;
}

export interface BinarySpec<C> {
  /** The command name, e.g. `otlp-edge-agent`: the logger's name and the prefix of usage errors. */
  name: string;
  /** The `--help` text. */
  help: string;
  /** Reads and validates the config file ('' = defaults); throws ConfigError. */
  loadConfig(path: string): C;
  logLevel(cfg: C): string;
  create(cfg: C, log: Logger): Service;
  /** Subcommands (`passwd`, `buffer`): their own arguments and exit code. */
  subcommands?: Record<string, (argv: string[]) => Promise<number>>;
}

/**
 * The command line every binary shares: `--config FILE`, `--check` (validate and exit), `--help`, `--version`;
 * exit codes 0 (done), 1 (could not start), 2 (bad arguments or configuration), 130 (a second signal); SIGTERM and
 * SIGINT stop the service cleanly, SIGHUP reloads it. Resolves with the exit code, or -1 while the service runs
 * (the process then ends on a signal).
 */
export async function runBinary<C>(spec: BinarySpec<C>, argv: string[]): Promise<number> {
  try {
    const sub = spec.subcommands?.[argv[0] ?? ''];
    if (sub) return await sub(argv.slice(1));
    return await runService(spec, argv);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.code}: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

async function runService<C>(spec: BinarySpec<C>, argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c', default: '' },
        check: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        version: { type: 'boolean', short: 'v', default: false },
      },
    }));
  } catch (e) {
    process.stderr.write(`${spec.name}: ${(e as Error).message}\nRun '${spec.name} --help' for usage.\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(spec.help);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const cfg = spec.loadConfig(values.config);
  if (values.check) {
    process.stdout.write(`${values.config || '(defaults)'}: configuration is valid\n`);
    return 0;
  }
  const log = createLogger(spec.name, spec.logLevel(cfg));
  const service = spec.create(cfg, log);
  let signals = 0;
  const stop = (signal: string) => {
    if (++signals > 1) {
      log.warn({ signal }, 'second signal: exiting without waiting for the flush');
      process.exit(130);
    }
    log.info({ signal }, 'stopping');
    service.stop().then(
      () => process.exit(0),
      (err: Error) => {
        log.error({ err: err.message }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    Promise.resolve(service.reload?.()).catch((err: Error) =>
      log.error({ err: err.message }, 'reload failed; keeping the previous settings'),
    );
  });
  try {
    await service.start();
  } catch (e) {
    log.error({ err: (e as Error).message, code: (e as { code?: string }).code }, `${spec.name} failed to start`);
    await service.stop().catch(() => undefined);
    return 1;
  }
  return -1;
}
