import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

/**
 * Live-stream clients for `bench aggregator`, in a process of their own (as real clients would be), so what they
 * cost shows in the node and not in the process feeding it: `reading` clients read every message, `stalled` ones
 * stop reading once connected. Run as `node watchers.js PORT READING STALLED`; it says `ready` once all are open,
 * `start` on stdin begins counting, `stop` prints the messages the reading clients got and exits.
 */

export interface Watchers {
  start(): void;
  /** Messages the reading clients got since start. */
  stop(): Promise<number>;
}

export async function startWatchers(port: number, reading: number, stalled: number): Promise<Watchers> {
  const child: ChildProcess = spawn(
    process.execPath,
    [fileURLToPath(import.meta.url), String(port), String(reading), String(stalled)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout! });
  const next = () => new Promise<string>((resolve) => lines.once('line', resolve));
  const ready = await next();
  if (ready !== 'ready') throw new Error(`stream watchers: ${ready}`);
  return {
    start: () => child.stdin!.write('start\n'),
    stop: async () => {
      const counted = next();
      child.stdin!.write('stop\n');
      return Number(await counted);
    },
  };
}

function open(port: number, stalled: boolean, onMessage: () => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/stream?kind=reading`);
    ws.on('message', onMessage);
    ws.on('error', reject);
    ws.on('open', () => {
      if (stalled) (ws as unknown as { _socket: { pause(): void } })._socket.pause();
      resolve(ws);
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [port, reading, stalled] = process.argv.slice(2).map(Number);
  let counting = false;
  let messages = 0;
  const all = await Promise.all(
    Array.from({ length: reading + stalled }, (_, i) =>
      open(port, i >= reading, () => {
        if (counting) messages++;
      }),
    ),
  ).catch((e: Error) => {
    process.stdout.write(`could not connect: ${e.message}\n`);
    process.exit(1);
  });
  process.stdout.write('ready\n');
  createInterface({ input: process.stdin }).on('line', (cmd) => {
    if (cmd === 'start') {
      messages = 0;
      counting = true;
    } else if (cmd === 'stop') {
      process.stdout.write(`${messages}\n`);
      for (const ws of all) ws.terminate();
      process.exit(0);
    }
  });
}
