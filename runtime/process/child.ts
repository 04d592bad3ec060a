import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

/**
 * Child processes the simulators and the test suites start: a binary of this project with a YAML config, or a peer
 * such as mosquitto. Started, waited for until ready (or failed with its output), stopped with SIGTERM then SIGKILL.
 */

export interface ChildService {
  readonly child: ChildProcess;
  /** Its stdout and stderr so far (the last `keepOutput` characters). */
  output(): string;
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
  /** SIGTERM, SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
  /** SIGKILL (kill -9) and wait for the exit. */
  kill9(): Promise<void>;
}

export interface ChildOptions {
  /** For messages: "aggregator", "mosquitto". */
  name: string;
  command: string;
  args: string[];
  /** Ready when this URL answers 200, or when `ready` resolves true; polled every 50 ms. */
  readyUrl?: string;
  ready?: () => Promise<boolean>;
  /** How long to wait for ready; default 20 s. */
  timeoutMs?: number;
  /** Also append the output to this file. */
  logFile?: string;
  /** Characters of output kept in memory; default all. */
  keepOutput?: number;
  /** Variables added to this process's environment for the child. */
  env?: Record<string, string>;
}

export async function startChild(o: ChildOptions): Promise<ChildService> {
  const child = spawn(o.command, o.args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(o.env ? { env: { ...process.env, ...o.env } } : {}),
  });
  let out = '';
  const keep = o.keepOutput ?? Infinity;
  const log = o.logFile ? createWriteStream(o.logFile, { flags: 'a' }) : null;
  const onData = (d: Buffer) => {
    out += d.toString();
    if (out.length > keep) out = out.slice(-keep);
    log?.write(d);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let dead = false;
  void exited.then(() => (dead = true));
  const ready = o.ready ?? (async () => (await fetch(o.readyUrl!).catch(() => null))?.status === 200);
  const end = Date.now() + (o.timeoutMs ?? 20_000);
  for (;;) {
    if (dead) throw new Error(`${o.name} exited during start:\n${out}`);
    if (await ready().catch(() => false)) break;
    if (Date.now() > end) {
      child.kill('SIGKILL');
      throw new Error(`timed out after ${o.timeoutMs ?? 20_000} ms waiting for ${o.name} ${o.readyUrl ?? ''}:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    exited,
    output: () => out,
    stop: async (graceMs = 15_000) => {
      if (!dead) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
    kill9: async () => {
      if (!dead) child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * Starts one of this project's binaries (`node MAIN --config DIR/NAME.yaml`) with `config` written as YAML, and
 * waits until `readyUrl` answers 200.
 */
export async function startBinary(
  dir: string,
  name: string,
  main: string,
  config: object,
  readyUrl: string,
  { nodeArgs = [], ...extra }: Partial<ChildOptions> & { nodeArgs?: string[] } = {},
): Promise<ChildService & { configPath: string }> {
  mkdirSync(dir, { recursive: true });
  const configPath = join(dir, `${name}.yaml`);
  writeFileSync(configPath, stringify(config));
  const c = await startChild({
    name,
    command: process.execPath,
    args: [...nodeArgs, main, '--config', configPath],
    readyUrl,
    ...extra,
  });
  return { ...c, configPath };
}
