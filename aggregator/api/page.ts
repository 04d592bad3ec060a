import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';

/**
 * The web page every node serves at `/` of its API port: static files from aggregator/web/ (no build step) and the
 * chart library from its npm package (uPlot), read once at start, so the page works on a network with no internet.
 * Answers carry a Content-Security-Policy that allows only this origin (and its WebSocket).
 */

const webDir = fileURLToPath(new URL('../../../aggregator/web/', import.meta.url));
const require = createRequire(import.meta.url);

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

interface Asset {
  type: string;
  body: Buffer;
}

export class Page {
  private readonly assets = new Map<string, Asset>();

  constructor() {
    const file = (path: string) => readFileSync(path);
    const add = (url: string, path: string) => {
      const ext = path.slice(path.lastIndexOf('.'));
      this.assets.set(url, { type: TYPES[ext] ?? 'application/octet-stream', body: file(path) });
    };
    add('/', join(webDir, 'index.html'));
    for (const name of ['app.js', 'charts.js', 'style.css', 'favicon.svg']) add(`/ui/${name}`, join(webDir, name));
    add('/ui/vendor/uPlot.esm.js', require.resolve('uplot/dist/uPlot.esm.js'));
    add('/ui/vendor/uPlot.min.css', require.resolve('uplot/dist/uPlot.min.css'));
  }

  /** Whether `path` is one of the page's files. */
  has(path: string): boolean {
    return this.assets.has(path === '/index.html' ? '/' : path);
  }

  answer(path: string, res: ServerResponse, head: boolean): void {
    const a = this.assets.get(path === '/index.html' ? '/' : path)!;
    res.writeHead(200, {
      'content-type': a.type,
      'content-length': String(a.body.length),
      'cache-control': path === '/' ? 'no-cache' : 'max-age=300',
      ...SECURITY_HEADERS,
    });
    res.end(head ? undefined : a.body);
  }
}
