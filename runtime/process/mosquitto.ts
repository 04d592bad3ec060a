import { existsSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { startChild, type ChildService } from './child.js';

/** The mosquitto binary (Debian installs it in /usr/sbin, which may not be on PATH), or null when none is found. */
export function mosquittoPath(): string | null {
  for (const p of [
    '/usr/sbin/mosquitto',
    '/usr/bin/mosquitto',
    '/usr/local/sbin/mosquitto',
    '/usr/local/bin/mosquitto',
  ]) {
    if (existsSync(p)) return p;
  }
  return null;
}

/**
 * A real mosquitto broker on 127.0.0.1:`port` (anonymous allowed, nothing persisted), ready once it accepts TCP
 * connections. `extraConfig` lines are appended to its configuration file in `dir`.
 */
export async function startMosquitto(
  dir: string,
  port: number,
  extraConfig: string[] = [],
): Promise<ChildService & { port: number; url: string }> {
  const bin = mosquittoPath();
  if (bin === null) throw new Error('mosquitto is not installed (Debian: apt-get install mosquitto)');
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', ...extraConfig, ''].join('\n'),
  );
  const c = await startChild({
    name: 'mosquitto',
    command: bin,
    args: ['-c', conf],
    keepOutput: 20_000,
    ready: () =>
      new Promise<boolean>((resolve) => {
        const s = connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      }),
  });
  return { ...c, port, url: `mqtt://127.0.0.1:${port}` };
}
