/**
 * The processes a benchmark runs and measures: child processes it starts and waits for, and their RSS, CPU time
 * and disk use read from /proc and the file system (so the figures are the target's own, not the benchmark's).
 */
import type { ChildProcess } from 'node:child_process';
import { startChild as runChild } from '../../runtime/process/child.js';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { freeLoopbackPort } from './util.js';

export interface Child {
  readonly child: ChildProcess;
  readonly url: string;
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

export async function startChild(
  name: string,
  script: string,
  args: (mqttPort: number, httpPort: number) => string[],
  children: Child[],
  nodeArgs: string[] = [],
  env?: Record<string, string>,
): Promise<Child & { httpPort: number }> {
  const mqttPort = await freeLoopbackPort();
  const httpPort = await freeLoopbackPort();
  const metricsUrl = `http://127.0.0.1:${httpPort}/metrics`;
  const started = await runChild({
    name,
    command: process.execPath,
    args: [...nodeArgs, script, ...args(mqttPort, httpPort)],
    readyUrl: metricsUrl,
    keepOutput: 20_000,
    ...(env ? { env } : {}),
  });
  const c = track(name, started.child, `mqtt://127.0.0.1:${mqttPort}`, children);
  return { ...c, httpPort, metrics: async () => (await fetch(metricsUrl)).text() };
}

export function track(name: string, child: ChildProcess, url: string, children: Child[]) {
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-20_000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) =>
    child.exitCode !== null ? resolve() : child.once('exit', () => resolve()),
  );
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
  };
  const c: Child & { exited: Promise<void>; output(): string } = {
    child,
    url,
    exited,
    output: () => out,
    stop,
    metrics: () => Promise.reject(new Error(`${name} has no metrics`)),
  };
  children.push(c);
  return c;
}

export function rssOf(pid: number | undefined): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** User + system CPU seconds of a process, all its threads (Linux /proc, USER_HZ = 100); 0 where unknown. */
export function cpuSecondsOf(pid: number | undefined): number {
  try {
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15 (proc(5)).
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

export function dirSize(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) total += statSync(join(dir, name)).size;
  return total;
}

/** What one fleet reading costs: its JSON bytes, and the points the agent stores for it (pointsOf, as counted in
 *  points_stored_total). */
