import { createServer, connect, type Socket } from 'node:net';

/** HTTP/2 frame types the server sends that belong to a stream's answer (RFC 9113 §6). */
const ANSWER_FRAMES = new Set([0x0 /* DATA */, 0x1 /* HEADERS */, 0x3 /* RST_STREAM */, 0x9 /* CONTINUATION */]);
const FRAME_HEADER = 9;

/**
 * A loopback proxy for one gRPC (HTTP/2) connection that can swallow the server's answers: requests still reach the
 * server (which commits them), but no answer reaches the client — a lost acknowledgement, on demand.
 *
 * Only the answers are dropped. The server's SETTINGS, PING acks and WINDOW_UPDATEs still pass: dropping all its
 * bytes (as this proxy first did) also starved the client's flow-control window and keepalive pings, so on a busy
 * machine the client could stop sending at all and the server never got the requests the test waits for.
 */
export async function startProxy(targetPort: () => number) {
  let cut = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort(), '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    client.on('data', (d) => upstream.write(d));
    let pending: Buffer = Buffer.alloc(0);
    upstream.on('data', (d: Buffer) => {
      pending = pending.length === 0 ? d : Buffer.concat([pending, d]);
      // Whole frames only: [3 length][1 type][1 flags][4 stream id] then the payload.
      while (pending.length >= FRAME_HEADER) {
        const size = FRAME_HEADER + pending.readUIntBE(0, 3);
        if (pending.length < size) break;
        const frame = pending.subarray(0, size);
        pending = pending.subarray(size);
        if (!(cut && ANSWER_FRAMES.has(frame[3]))) client.write(frame);
      }
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
    /** true: the server's answers are dropped from now on. */
    setCut(v: boolean) {
      cut = v;
    },
    /** Drops every open connection (the client must reconnect; HPACK state starts afresh). */
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
