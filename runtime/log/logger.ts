import { pino, type Logger } from 'pino';

/**
 * The one logger factory of the binaries: pino JSON on stdout, `name` naming the process (or a part of it, such as
 * the aggregator's audit log), pino's default base fields (pid, hostname) on every line.
 */
export function createLogger(name: string, level: string): Logger {
  return pino({ name, level });
}

export type { Logger };
