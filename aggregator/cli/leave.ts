import { parseArgs } from 'node:util';
import { parseDuration } from '../../protocol/config/units.js';
import { ApiTokens } from '../api/tokens.js';
import { loadAggregatorConfig } from '../config.js';
import type { LeaveStatus } from '../cluster/leave.js';

const HELP = `Usage:
  otlp-edge-aggregator leave --config aggregator.yaml [--timeout 10m] [--url http://127.0.0.1:8080]

Tells the node running with this configuration to leave its cluster for good (a scale-down), and waits until
it holds nothing the cluster needs: it steps out of the ring, hands every device's state to its new owner and
delivers its export queue. Exit 0 once it has left (or it is no cluster member: nothing to hand off), 1 when it
cannot leave (no other healthy member) or --timeout passes first. The node keeps running, owning nothing, until it
is stopped; restarted, it joins again.

Run it where the node runs: it asks the node's API (api.port on 127.0.0.1, or --url) with the token in
OTLP_EDGE_API_TOKEN, else the first admin token of auth.api_tokens_file. In Kubernetes it is the pod's preStop hook.
`;

interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: Record<string, string | undefined>;
}

/** Per request: the node holds the request this long while it works (the API caps it at 60 s). */
const WAIT = '10s';

export async function runLeave(argv: string[], io: Io = process): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c', default: '' },
        timeout: { type: 'string', default: '10m' },
        url: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (e) {
    io.stderr.write(`otlp-edge-aggregator leave: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  const timeoutMs = parseDuration(values.timeout);
  if (timeoutMs === null) {
    io.stderr.write(`otlp-edge-aggregator leave: --timeout: expected a duration like 10m, got '${values.timeout}'\n`);
    return 2;
  }
  const cfg = loadAggregatorConfig(values.config);
  const host = cfg.api.host === '0.0.0.0' || cfg.api.host === '::' || cfg.api.host === '' ? '127.0.0.1' : cfg.api.host;
  const base = values.url ?? `http://${host.includes(':') ? `[${host}]` : host}:${cfg.api.port}`;
  const token =
    io.env.OTLP_EDGE_API_TOKEN ||
    (cfg.auth.api_tokens_file ? ApiTokens.adminToken(cfg.auth.api_tokens_file) : null) ||
    null;
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const until = Date.now() + timeoutMs;
  for (;;) {
    let res: Response;
    try {
      res = await fetch(`${base}/v1/cluster/leave?wait=${WAIT}`, { method: 'POST', headers });
    } catch (e) {
      io.stderr.write(`otlp-edge-aggregator leave: cannot reach the node at ${base}: ${(e as Error).cause ?? e}\n`);
      return 1;
    }
    const body = (await res.json().catch(() => ({}))) as Partial<LeaveStatus> & {
      error?: { code: string; message: string };
    };
    if (res.status === 409 && body.error?.message.includes('not in a cluster')) {
      io.stdout.write('this node is not in a cluster: nothing to hand off\n');
      return 0;
    }
    if (body.error || (res.status !== 200 && res.status !== 202)) {
      const e = body.error ?? { code: String(res.status), message: res.statusText };
      io.stderr.write(`otlp-edge-aggregator leave: ${e.code}: ${e.message}\n`);
      return 1;
    }
    io.stdout.write(`${JSON.stringify({ at: new Date().toISOString(), ...body })}\n`);
    if (body.state === 'left') return 0;
    if (Date.now() >= until) {
      io.stderr.write(
        `otlp-edge-aggregator leave: still ${body.devices} devices and ${body.export_queued} export requests here after --timeout ${values.timeout}; the node keeps handing them off (run leave again to wait)\n`,
      );
      return 1;
    }
  }
}
