/**
 * How the gateway service starts the agent (deploy/gateway/otlp-edge-agent.service and install.sh): the benches
 * that run the agent start it the same way, so they measure the agent as installed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** How the gateway service starts the agent: the node flags and environment its unit gives it. */
export interface ShippedAgent {
  nodeArgs: string[];
  env: Record<string, string>;
}

/**
 * The node flags and environment of the unit's ExecStart and Environment= lines, with install.sh's default heap
 * limit, so the bench measures the agent as installed (read once per process).
 */
export function shippedAgent(): ShippedAgent {
  return (shipped ??= readShipped());
}

let shipped: ShippedAgent | null = null;

function readShipped(): ShippedAgent {
  const gateway = fileURLToPath(new URL('../../../deploy/gateway/', import.meta.url));
  const heap = /^HEAP_MB=(\d+)$/m.exec(readFileSync(join(gateway, 'install.sh'), 'utf8'));
  const unit = readFileSync(join(gateway, 'otlp-edge-agent.service'), 'utf8');
  const exec = /^ExecStart=@NODE@ (.*?) @APP@\/dist\/agent\/main\.js /m.exec(unit);
  if (!heap || !exec) throw new Error(`${gateway}: install.sh's HEAP_MB or the unit's ExecStart is not where expected`);
  const env: Record<string, string> = {};
  for (const m of unit.matchAll(/^Environment=([A-Z_]+)=(\S+)$/gm)) env[m[1]] = m[2];
  return { nodeArgs: exec[1].replaceAll('@HEAP_MB@', heap[1]).split(/\s+/), env };
}

/** The shipped flags and environment, for a report note. */
export function describeShipped(): string {
  const { nodeArgs, env } = shippedAgent();
  return [`flags ${nodeArgs.join(' ')}`, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].join(', ');
}
