import type { ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

/**
 * The operations endpoints both binaries serve: `/healthz` (the process answers), `/readyz` (200, or 503 with the
 * reason the process cannot take data now), `/metrics` (Prometheus text). The agent serves them alone on its local
 * port; the aggregator beside its API (where /metrics needs a token).
 */

/** Answers /healthz or /readyz; false for any other path. */
export function answerProbe(path: string, res: ServerResponse, notReady: () => string | null): boolean {
  if (path === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return true;
  }
  if (path === '/readyz') {
    const reason = notReady();
    res
      .writeHead(reason === null ? 200 : 503, { 'content-type': 'text/plain' })
      .end(reason === null ? 'ready\n' : `not ready: ${reason}\n`);
    return true;
  }
  return false;
}

/** Writes the registry in the Prometheus text format (500 with the reason if collecting fails). */
export async function answerMetrics(res: ServerResponse, registry: Registry): Promise<void> {
  try {
    const text = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType }).end(text);
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${(err as Error).message}\n`);
  }
}
