import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A loopback TCP proxy standing for a hostile network between an agent and an aggregator: it can delay every chunk
 * (`delayMs`), black-hole the link (`partitioned`: connections stay open, nothing gets through either way, as when a
 * route vanishes), refuse new connections, and reset the open ones.
 */
export class FaultProxy {
  delayMs = 0;
  partitioned = false;
  refusing = false;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly targetPort: number) {}

  async start(): Promise<void> {
    const server = createServer((client) => {
      if (this.refusing) {
        client.resetAndDestroy();
        return;
      }
      const upstream = connect(this.targetPort, '127.0.0.1');
      this.sockets.add(client);
      this.sockets.add(upstream);
      const pipe = (from: Socket, to: Socket) =>
        from.on('data', (d: Buffer) => {
          if (this.partitioned) return;
          if (this.delayMs === 0) to.write(d);
          else setTimeout(() => !to.destroyed && to.write(d), this.delayMs);
        });
      pipe(client, upstream);
      pipe(upstream, client);
      const close = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      for (const s of [client, upstream]) {
        s.on('close', close);
        s.on('error', close);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Resets every open connection (RST to both ends). */
  reset(): void {
    for (const s of this.sockets) s.resetAndDestroy();
    this.sockets.clear();
  }

  close(): Promise<void> {
    this.reset();
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
