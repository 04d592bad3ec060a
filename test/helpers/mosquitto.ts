import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, waitFor } from './ports.js';
import { connect } from 'node:net';

export interface Mosquitto {
  port: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** The mosquitto binary (Debian installs it in /usr/sbin, which may not be on PATH). */
export function mosquittoPath(): string {
  for (const p of ['/usr/sbin/mosquitto', '/usr/bin/mosquitto']) {
    if (spawnSync('test', ['-x', p]).status === 0) return p;
  }
  return 'mosquitto';
}

/** Starts a real mosquitto broker on a free loopback port (anonymous allowed, no persistence to disk). */
export async function startMosquitto(dir: string, extraConfig = ''): Promise<Mosquitto> {
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n${extraConfig}\n`);
  const child = spawn(mosquittoPath(), ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor(`mosquitto on ${port}`, () => new Promise<boolean>((resolve) => {
    if (child.exitCode !== null) throw new Error(`mosquitto exited: ${out}`);
    const s = connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  }));
  return { port, child, stop: async () => { child.kill('SIGTERM'); await exited; } };
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
export function pahoPublish(script: string, args: string[]): Promise<{ published: number; acked: number[]; rc: number | null }> {
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
