import type { Logger } from 'pino';
import type { AggregatorConfig } from './config.js';
import type { AggregatorMetrics } from './ops/metrics.js';
import { ApiTokens } from './api/tokens.js';
import { AgentTokens } from './ingest/tokens.js';
import { readFileSync, statSync } from 'node:fs';
import { PeerSecret } from './cluster/peer-auth.js';

/**
 * The node's token files (`auth.agent_tokens_file`, `auth.api_tokens_file`): loaded at start (a bad file stops the
 * node), read again on SIGHUP. A file that no longer reads or parses on reload keeps the tokens in force (audited,
 * counted) rather than locking everyone out or opening the door.
 */
export class AuthFiles {
  agent: AgentTokens = AgentTokens.open();
  /** null = the API is open (development only). */
  api: ApiTokens | null = null;

  constructor(
    private readonly cfg: AggregatorConfig['auth'],
    private readonly log: Logger,
    private readonly audit: Logger,
    private readonly metrics: AggregatorMetrics,
  ) {}

  load(): void {
    this.agent = this.cfg.agent_tokens_file ? AgentTokens.load(this.cfg.agent_tokens_file) : AgentTokens.open();
    if (this.agent.open) {
      this.log.warn('auth.agent_tokens_file is empty: any agent is accepted without a token (development only)');
    }
    this.api = this.cfg.api_tokens_file ? ApiTokens.load(this.cfg.api_tokens_file) : null;
    if (this.api === null) {
      this.log.warn(
        'auth.api_tokens_file is empty: the API and /metrics answer anyone, and anyone may delete devices (development only)',
      );
    }
  }

  reload(): void {
    this.reloadOne(
      'agent',
      this.cfg.agent_tokens_file,
      () => (this.agent = AgentTokens.load(this.cfg.agent_tokens_file)).size,
    );
    this.reloadOne('api', this.cfg.api_tokens_file, () => (this.api = ApiTokens.load(this.cfg.api_tokens_file)).size);
  }

  private reloadOne(file: 'agent' | 'api', path: string, load: () => number): void {
    if (path === '') return;
    try {
      const n = load();
      this.metrics.tokenReloads.inc({ file, outcome: 'ok' });
      this.audit.info({ audit: 'token_reload', file: path, tokens: n, outcome: 'ok' }, 'tokens reloaded');
    } catch (e) {
      this.metrics.tokenReloads.inc({ file, outcome: 'failed' });
      this.audit.error(
        { audit: 'token_reload', file: path, outcome: 'failed', err: (e as Error).message },
        'token reload failed; the previous tokens stay in force',
      );
    }
  }
}

/**
 * The cluster secret and TLS files, read at start (a missing file stops the node). Credential files readable by
 * other users, and a cluster without a secret, are warned about: the node still starts; the files are the operator's.
 */
export function loadKeys(
  cfg: AggregatorConfig,
  log: Logger,
): {
  clustered: boolean;
  secret: PeerSecret | null;
  tlsFiles: { cert: Buffer; key: Buffer; ca: Buffer | null } | null;
} {
  const clustered = cfg.cluster.members.length > 0 || cfg.cluster.dns !== '';
  const secret = cfg.cluster.secret_file ? PeerSecret.load(cfg.cluster.secret_file) : null;
  for (const [key, path] of [
    ['cluster.secret_file', cfg.cluster.secret_file],
    ['auth.agent_tokens_file', cfg.auth.agent_tokens_file],
    ['auth.api_tokens_file', cfg.auth.api_tokens_file],
  ]) {
    if (path !== '' && (statSync(path).mode & 0o077) !== 0)
      log.warn({ key, path }, `${key} is readable by other users: chmod 600 it (it holds credentials)`);
  }
  if (clustered && secret === null)
    log.warn(
      'cluster.secret_file is empty: any client that reaches the gRPC port may call the peer service (development only)',
    );
  const tlsFiles = cfg.tls.enabled
    ? {
        cert: readFileSync(cfg.tls.cert),
        key: readFileSync(cfg.tls.key),
        ca: cfg.tls.ca ? readFileSync(cfg.tls.ca) : null,
      }
    : null;
  return { clustered, secret, tlsFiles };
}
