import { pino, type Logger } from 'pino';

/** pino JSON logs on stdout (DESIGN.md: "Logs are pino JSON on stdout"). */
export function createLogger(level: string, name = 'otlp-edge-agent'): Logger {
  return pino({ name, level, base: { pid: process.pid } });
}

export type { Logger };
