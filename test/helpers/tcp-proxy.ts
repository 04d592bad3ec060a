import { createServer, connect, type Socket } from 'node:net';

/**
 * A loopback TCP proxy that can swallow everything the server sends back: requests still reach the server (which
 * commits them), but its answers never reach the client — a lost acknowledgement, on demand.
 */
export async function startProxy(targetPort: () => number) {
  let cut = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort(), '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d) => {
      if (!cut) client.write(d);
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', close);
    upstream.on('close', close);
    client.on('error', close);
    upstream.on('error', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    /** true: answers from the server are dropped from now on. */
    setCut(v: boolean) {
      cut = v;
    },
    /** Drops every open connection (the client must reconnect). */
    reset() {
      for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
