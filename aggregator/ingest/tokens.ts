import { AggregatorErrorCodes } from '../errors.js';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { OtlpEdgeError } from '../../protocol/errors.js';
import { ID_PATTERN, ID_RULE } from '../../protocol/ids.js';

/**
 * Agent tokens (`auth.agent_tokens_file`): one line per token, `AGENT_ID TOKEN [TENANT]`, `#` comments and blank
 * lines allowed. A token authenticates one agent id (an agent or an OTLP source): a batch whose agent_id differs
 * from the token's is refused, so one gateway cannot write into another's deduplication space. TENANT puts the
 * agent in a tenant: what it sends is stamped `tenant.id` and counted against that tenant's quotas; an agent id
 * belongs to one tenant (or none) whatever token it uses. The file is read again on SIGHUP (`AgentTokens.load`
 * gives a new set; the node swaps it in only when the whole file is valid).
 */
export class AgentTokens {
  /** sha256(token) → agent id. */
  private constructor(
    private readonly byDigest: Map<string, string> | null,
    /** agent id → its tenant, for agents that have one. */
    private readonly tenants: Map<string, string> = new Map(),
  ) {}

  /** No file: every agent is accepted (development only; the node logs it loudly at start). */
  static open(): AgentTokens {
    return new AgentTokens(null);
  }

  static load(path: string): AgentTokens {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new OtlpEdgeError(
        AggregatorErrorCodes.AGENT_TOKENS_UNREADABLE,
        `cannot read auth.agent_tokens_file ${path}: ${(e as Error).message}`,
      );
    }
    const map = new Map<string, string>();
    const tenants = new Map<string, string>();
    const seen = new Set<string>();
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const parts = line.split(/\s+/);
      const [agent, token, tenant = ''] = parts;
      if (
        parts.length < 2 ||
        parts.length > 3 ||
        !ID_PATTERN.test(agent) ||
        token.length < 8 ||
        (parts.length === 3 && !ID_PATTERN.test(tenant))
      ) {
        throw new OtlpEdgeError(
          AggregatorErrorCodes.BAD_AGENT_TOKENS_FILE,
          `${path}:${i + 1}: expected "AGENT_ID TOKEN [TENANT]" (ids of ${ID_RULE}, a token of at least 8 characters), got ${JSON.stringify(line.slice(0, 60).replace(token ?? '', '<token>'))}`,
        );
      }
      // One agent, one tenant: its deduplication space and its devices cannot straddle two.
      if (seen.has(agent) && (tenants.get(agent) ?? '') !== tenant)
        throw new OtlpEdgeError(
          AggregatorErrorCodes.BAD_AGENT_TOKENS_FILE,
          `${path}:${i + 1}: agent '${agent}' is listed with tenant '${tenants.get(agent) ?? ''}' on an earlier line and '${tenant}' here; an agent belongs to one tenant`,
        );
      seen.add(agent);
      if (tenant !== '') tenants.set(agent, tenant);
      map.set(digest(token), agent);
    });
    return new AgentTokens(map, tenants);
  }

  get open(): boolean {
    return this.byDigest === null;
  }

  get size(): number {
    return this.byDigest?.size ?? 0;
  }

  /** The tenant of an (authenticated) agent, or '' for one in no tenant. */
  tenantOf(agentId: string): string {
    return this.tenants.get(agentId) ?? '';
  }

  /** Whether any agent is in a tenant. */
  get tenanted(): boolean {
    return this.tenants.size > 0;
  }

  /**
   * The agent an `authorization` metadata value authenticates: `{ agent }` ('' when tokens are off), or the reason
   * it does not (for an UNAUTHENTICATED answer). Runs before the call's message is read.
   */
  agentOf(authorization: string | undefined): { agent: string } | { refused: string } {
    if (this.byDigest === null) return { agent: '' };
    if (!authorization) return { refused: 'missing token: send "authorization: Bearer <token>" (agent: uplink.token)' };
    const m = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (!m) return { refused: 'malformed authorization header: expected "Bearer <token>"' };
    // Looked up by SHA-256 digest: how long the lookup takes can only say something about the digest, from which the
    // token cannot be worked back, so a hash map is as safe as comparing all tokens in constant time — and stays
    // O(1) with 10,000 agents (this runs on every call, before the message is read).
    const owner = this.byDigest.get(digest(m[1]));
    return owner === undefined ? { refused: 'unknown token' } : { agent: owner };
  }

  /**
   * Checks the `authorization` metadata of a call for `agentId`: null when allowed, else the reason (for an
   * UNAUTHENTICATED answer).
   */
  check(authorization: string | undefined, agentId: string): string | null {
    const r = this.agentOf(authorization);
    if ('refused' in r) return r.refused;
    if (this.byDigest !== null && r.agent !== agentId) return `token belongs to agent '${r.agent}', not '${agentId}'`;
    return null;
  }
}

function digest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
