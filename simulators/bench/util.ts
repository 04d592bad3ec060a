import { createServer } from 'node:net';

/** Ports handed out by this process: the OS may offer a port again once its probe closed, before it is bound. */
const handedOut = new Set<number>();

/** A free TCP port on 127.0.0.1 (benchmarks bind only loopback), never one this process was given before. */
export async function freeLoopbackPort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    if (handedOut.has(port)) continue;
    if (handedOut.size > 10_000) handedOut.clear();
    handedOut.add(port);
    return port;
  }
}

/** Waits until `url` answers 200 (a child process has started), at most `timeoutMs`. */
export async function waitForHttp(url: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const ok = await fetch(url).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
}

/** The value of one sample in Prometheus text (`name` or `name{labels}`), summed over label sets when unlabeled. */
export function scrapeMetric(text: string, name: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    if (line.startsWith(name + ' ') || (!name.includes('{') && line.startsWith(name + '{')))
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}
