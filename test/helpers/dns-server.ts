import { createSocket } from 'node:dgram';

/**
 * A tiny authoritative DNS server on 127.0.0.1 for tests: answers A queries for one name from a list the test can
 * change (a stand-in for a Kubernetes headless Service whose endpoints come and go). Everything else: NXDOMAIN.
 */
export async function startDnsServer(name: string, initial: string[]) {
  let addresses = [...initial];
  const sock = createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    if (msg.length < 12) return;
    const id = msg.readUInt16BE(0);
    // Question: labels until a zero byte, then QTYPE and QCLASS.
    let p = 12;
    const labels: string[] = [];
    while (p < msg.length && msg[p] !== 0) {
      labels.push(msg.subarray(p + 1, p + 1 + msg[p]).toString());
      p += msg[p] + 1;
    }
    const qEnd = p + 5;
    const qtype = msg.readUInt16BE(p + 1);
    const question = msg.subarray(12, qEnd);
    const match = labels.join('.').toLowerCase() === name.toLowerCase();
    const answers = match && qtype === 1 ? addresses : [];
    const header = Buffer.alloc(12);
    header.writeUInt16BE(id, 0);
    header.writeUInt16BE(0x8400 | (match ? 0 : 3), 2); // response, authoritative, NOERROR or NXDOMAIN
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    const records = answers.map((a) => {
      const r = Buffer.alloc(16);
      r.writeUInt16BE(0xc00c, 0); // pointer to the question's name
      r.writeUInt16BE(1, 2); // A
      r.writeUInt16BE(1, 4); // IN
      r.writeUInt32BE(1, 6); // TTL 1 s
      r.writeUInt16BE(4, 10);
      a.split('.').forEach((o, i) => r.writeUInt8(Number(o), 12 + i));
      return r;
    });
    sock.send(Buffer.concat([header, question, ...records]), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${sock.address().port}`,
    set(next: string[]) {
      addresses = [...next];
    },
    close: () => new Promise<void>((resolve) => sock.close(() => resolve())),
  };
}
