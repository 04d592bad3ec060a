import { AgentErrorCodes } from '../errors.js';
import { Signal } from '../../protocol/otlp/signal.js';
import { parseArgs } from 'node:util';
import { segmentsOf } from '../buffer/pack.js';
import { decodeLogsRequest, decodeMetricsRequest } from '../../protocol/otlp/decode.js';
import { formatSize } from '../../protocol/config/units.js';
import { CircularBuffer } from '../buffer/circular-buffer.js';
import { bufferDir, loadAgentConfig } from '../config.js';

const HELP = `Usage:
  otlp-edge-agent buffer stats --config agent.yaml [--json]
  otlp-edge-agent buffer dump  --config agent.yaml [--meta] [--limit N]

stats  batches, points and bytes held, the cap, sequence range, and the persistent
       counters of batches and points dropped by the cap.
dump   one OTLP/JSON request per stored batch per line, oldest first
       (ExportMetricsServiceRequest or ExportLogsServiceRequest). --meta wraps each
       line as {"seq","signal","points","created","request"}.

The buffer is a LevelDB database: while an agent runs on it, stop the agent first
(or read the same figures from its /metrics).
`;

interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export async function runBuffer(argv: string[], io: Io = process): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c', default: '' },
        json: { type: 'boolean', default: false },
        meta: { type: 'boolean', default: false },
        limit: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    io.stderr.write(`otlp-edge-agent buffer: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const sub = positionals[0];
  if (values.help || sub === undefined) {
    io.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  if (sub !== 'stats' && sub !== 'dump') {
    io.stderr.write(`otlp-edge-agent buffer: unknown subcommand '${sub}'; expected stats or dump\n`);
    return 2;
  }
  const limit = values.limit === undefined ? Infinity : Number(values.limit);
  if (!(limit > 0) || (limit !== Infinity && !Number.isInteger(limit))) {
    io.stderr.write(`otlp-edge-agent buffer: --limit: expected a positive integer, got '${values.limit}'\n`);
    return 2;
  }
  const cfg = loadAgentConfig(values.config);
  const dir = bufferDir(cfg);
  let buf: CircularBuffer;
  try {
    buf = await CircularBuffer.open({ dir, maxBytes: cfg.buffer.max_bytes });
  } catch (e) {
    const err = e as Error & { cause?: Error };
    const locked = /lock/i.test(`${err.message} ${err.cause?.message ?? ''}`);
    io.stderr.write(
      locked
        ? `${AgentErrorCodes.BUFFER_LOCKED}: the buffer at ${dir} is in use by a running agent; stop it first, or read its /metrics\n`
        : `${AgentErrorCodes.BUFFER_UNREADABLE}: cannot open the buffer at ${dir}: ${err.message}${err.cause ? ` (${err.cause.message})` : ''}\n`,
    );
    return 1;
  }
  try {
    if (sub === 'stats') {
      const s = buf.stats();
      if (values.json) io.stdout.write(JSON.stringify({ dir, ...s }) + '\n');
      else {
        const rows: [string, string][] = [
          ['directory', dir],
          ['batches', String(s.batches)],
          ['points', String(s.points)],
          ['bytes', `${s.bytes} (${((100 * s.bytes) / s.maxBytes).toFixed(1)}% of the ${formatSize(s.maxBytes)} cap)`],
          ['sequence', s.batches ? `${s.oldestSeq} … ${s.newestSeq} (next ${s.nextSeq})` : `empty (next ${s.nextSeq})`],
          ['stored since creation', `${s.appendedBatches} batches, ${s.appendedPoints} points`],
          ['dropped by the cap', `${s.droppedBatches} batches, ${s.droppedPoints} points`],
        ];
        for (const [k, v] of rows) io.stdout.write(`${k.padEnd(22)} ${v}\n`);
      }
      return 0;
    }
    let n = 0;
    // A packed record prints as the batches it holds, one line each, as they were stored.
    for await (const b of buf.entries()) {
      for (const s of segmentsOf(b)) {
        if (n++ >= limit) return 0;
        const request = s.signal === Signal.LOGS ? decodeLogsRequest(s.otlp) : decodeMetricsRequest(s.otlp);
        const line = values.meta
          ? {
              seq: s.seq,
              signal: s.signal === Signal.LOGS ? 'logs' : 'metrics',
              points: s.points,
              created: new Date(b.createdMs).toISOString(),
              ...(b.segments ? { packed_in: b.seq } : {}),
              request,
            }
          : request;
        if (!io.stdout.write(JSON.stringify(line) + '\n')) await new Promise((r) => io.stdout.once('drain', r));
      }
    }
    return 0;
  } finally {
    await buf.close();
  }
}
