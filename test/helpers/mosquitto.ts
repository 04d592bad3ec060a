import { spawn, type ChildProcess } from 'node:child_process';
import { startMosquitto as runMosquitto } from '../../runtime/process/mosquitto.js';
import { freePort } from './ports.js';

export interface Mosquitto {
  port: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts a real mosquitto broker on a free loopback port (anonymous allowed, no persistence to disk). */
export async function startMosquitto(dir: string, extraConfig = ''): Promise<Mosquitto> {
  const m = await runMosquitto(dir, await freePort(), [
    'max_queued_messages 100000',
    ...extraConfig.split('\n').filter(Boolean),
  ]);
  return { port: m.port, child: m.child, stop: async () => void (await m.stop()) };
}

/** Runs `mosquitto_pub` with the given arguments; resolves with its exit code and output. */
export function mosquittoPub(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('mosquitto_pub', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

/** Runs the paho-mqtt publisher (Debian's python3-paho-mqtt imports only under /usr/bin/python3). */
export function pahoPublish(
  script: string,
  args: string[],
): Promise<{ published: number; acked: number[]; rc: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/python3', [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`paho publisher exited ${code}: ${err}`));
      resolve(JSON.parse(out.trim().split('\n').pop()!));
    });
  });
}
