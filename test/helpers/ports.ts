import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Ports are taken from 20000–32767, below Linux's ephemeral range (32768–60999): a port the OS picked with
 * `listen(0)` is also where other processes' outgoing connections land, and between "free a moment ago" and the
 * service binding it, a parallel test's fetch or MQTT client took it (EADDRINUSE). Each test process walks the
 * range from its own random start, and a port is checked free before it is handed out. Two processes whose walks met
 * still handed out the same port (each checked it free before either bound it: EADDRINUSE in a cluster test), so a
 * port handed out is also claimed across processes with a file created exclusively; a claim lapses after 10 minutes.
 */
const LOW = 20_000;
const HIGH = 32_767;
let next = LOW + Math.floor(Math.random() * (HIGH - LOW));

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

const CLAIMS = join(tmpdir(), 'otlp-edge-test-ports');
const CLAIM_MS = 10 * 60_000;

/** True when this process now holds the claim on `port` (no other process handed it out in the last 10 minutes). */
function claim(port: number): boolean {
  mkdirSync(CLAIMS, { recursive: true });
  const file = join(CLAIMS, String(port));
  try {
    writeFileSync(file, String(process.pid), { flag: 'wx' });
    return true;
  } catch {
    try {
      if (Date.now() - statSync(file).mtimeMs < CLAIM_MS) return false;
      writeFileSync(file, String(process.pid));
      return true;
    } catch {
      return false;
    }
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago and is handed out once across concurrent test processes. */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 1000; tries++) {
    const port = next;
    next = next >= HIGH ? LOW : next + 1;
    if (claim(port) && (await bindable(port))) return port;
  }
  throw new Error('no free loopback port in 20000-32767');
}

/** Polls `fn` every `everyMs` until it returns a truthy value or `timeoutMs` passes (then throws `what`). */
export async function waitFor<T>(
  what: string,
  fn: () => T | Promise<T>,
  timeoutMs = 10_000,
  everyMs = 50,
): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
