import { AggregatorErrorCodes } from '../errors.js';
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { OtlpEdgeError } from '../../protocol/errors.js';
import { ID_PATTERN, ID_RULE } from '../../protocol/ids.js';

/**
 * API tokens (`auth.api_tokens_file`): one line per token, `TOKEN ROLE [NAME [TENANT]]`, `#` comments and blank
 * lines allowed. ROLE `read` may GET; `admin` may also change state (DELETE). NAME is what the audit log says (the
 * token itself is never logged); default `line-<n>`. TENANT binds the token to one tenant: it sees and changes only
 * that tenant's devices, their alerts and their live stream (not the cluster-wide fleet totals). Read again on
 * SIGHUP: the node swaps in the new set only when the whole file is valid, and keeps the old one otherwise.
 */

export type ApiRole = 'read' | 'admin';

export interface ApiPrincipal {
  name: string;
  role: ApiRole;
  /** The one tenant whose devices the token may see; absent = every device. */
  tenant?: string;
}

const MIN_TOKEN_CHARS = 16;
const NAME = /^[A-Za-z0-9._:@-]{1,64}$/;

export class ApiTokens {
  /** sha256(token) digests with their principal; every lookup compares against all of them in constant time. */
  private constructor(private readonly entries: { digest: Buffer; who: ApiPrincipal }[]) {}

  static load(path: string): ApiTokens {
    return new ApiTokens(ApiTokens.read(path).map(({ token, who }) => ({ digest: digest(token), who })));
  }

  /** The first admin token of a tokens file (what `otlp-edge-aggregator leave` on the node itself sends), or null. */
  static adminToken(path: string): string | null {
    return ApiTokens.read(path).find((e) => e.who.role === 'admin')?.token ?? null;
  }

  private static read(path: string): { token: string; who: ApiPrincipal }[] {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new OtlpEdgeError(
        AggregatorErrorCodes.API_TOKENS_UNREADABLE,
        `cannot read auth.api_tokens_file ${path}: ${(e as Error).message}`,
      );
    }
    const entries: { token: string; who: ApiPrincipal }[] = [];
    const names = new Set<string>();
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const [token, role, name = `line-${i + 1}`, tenant, ...rest] = line.split(/\s+/);
      const where = `${path}:${i + 1}`;
      const bad = (what: string) =>
        new OtlpEdgeError(
          AggregatorErrorCodes.BAD_API_TOKENS_FILE,
          `${where}: ${what}; expected "TOKEN ROLE [NAME [TENANT]]" with a token of at least ${MIN_TOKEN_CHARS} characters, ROLE read or admin, NAME of [A-Za-z0-9._:@-], TENANT a tenant id (${ID_RULE})`,
        );
      if (rest.length > 0 || role === undefined) throw bad(`${rest.length > 0 ? 'too many' : 'too few'} fields`);
      if (token.length < MIN_TOKEN_CHARS) throw bad(`token of ${token.length} characters`);
      if (role !== 'read' && role !== 'admin') throw bad(`role ${JSON.stringify(role.slice(0, 20))}`);
      if (!NAME.test(name)) throw bad(`name ${JSON.stringify(name.slice(0, 70))}`);
      if (names.has(name)) throw bad(`name '${name}' used twice (the audit log could not tell them apart)`);
      if (tenant !== undefined && !ID_PATTERN.test(tenant)) throw bad(`tenant ${JSON.stringify(tenant.slice(0, 70))}`);
      names.add(name);
      entries.push({ token, who: tenant === undefined ? { name, role } : { name, role, tenant } });
    });
    return entries;
  }

  get size(): number {
    return this.entries.length;
  }

  /**
   * The principal of an `Authorization` header value, or why there is none (for a 401): `Bearer <token>`, or
   * `Basic` with the token as the password (any user name), which is what a browser sends for the page.
   */
  authenticate(authorization: string | undefined): ApiPrincipal | { refused: string } {
    if (!authorization) return { refused: 'missing token: send "Authorization: Bearer <token>"' };
    let token: string;
    const bearer = /^Bearer\s+(\S+)$/i.exec(authorization);
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(authorization);
    if (bearer) token = bearer[1];
    else if (basic) {
      const pair = Buffer.from(basic[1], 'base64').toString('utf8');
      token = pair.slice(pair.indexOf(':') + 1);
    } else return { refused: 'malformed Authorization header: expected "Bearer <token>"' };
    const d = digest(token);
    let who: ApiPrincipal | undefined;
    for (const e of this.entries) if (timingSafeEqual(e.digest, d)) who = e.who;
    return who ?? { refused: 'unknown token' };
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
