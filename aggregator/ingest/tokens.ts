import { AggregatorErrorCodes } from '../errors.js';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { OtlpEdgeError } from '../../protocol/errors.js';
import { ID_PATTERN, ID_RULE } from '../../protocol/ids.js';

/**
 * Agent tokens (`auth.agent_tokens_file`): one line per agent, `AGENT_ID TOKEN`, `#` comments and blank lines
 * allowed (a third TENANT column is refused until tenants are isolated). A token authenticates one agent id: a
 * batch whose agent_id differs from the token's is refused, so one gateway cannot write into another's
 * deduplication space. The file is read again on SIGHUP (`AgentTokens.load` gives a new set; the node swaps it in
 * only when the whole file is valid).
 */
export class AgentTokens {
  /** sha256(token) → agent id. */
  private constructor(private readonly byDigest: Map<string, string> | null) {}

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
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const parts = line.split(/\s+/);
      if (parts.length === 3) {
        // Accepting a tenant and ignoring it would promise an isolation that is not there.
        throw new OtlpEdgeError(
          AggregatorErrorCodes.BAD_AGENT_TOKENS_FILE,
          `${path}:${i + 1}: a TENANT column is not available yet in this version (tenants are not isolated); write "AGENT_ID TOKEN"`,
        );
      }
      if (parts.length !== 2 || !ID_PATTERN.test(parts[0]) || parts[1].length < 8) {
        throw new OtlpEdgeError(
          AggregatorErrorCodes.BAD_AGENT_TOKENS_FILE,
          `${path}:${i + 1}: expected "AGENT_ID TOKEN" (an id of ${ID_RULE}, a token of at least 8 characters), got ${JSON.stringify(line.slice(0, 60).replace(parts[1] ?? '', '<token>'))}`,
        );
      }
      map.set(digest(parts[1]), parts[0]);
    });
    return new AgentTokens(map);
  }

  get open(): boolean {
    return this.byDigest === null;
  }

  get size(): number {
    return this.byDigest?.size ?? 0;
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
