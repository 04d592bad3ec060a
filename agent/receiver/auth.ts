/**
 * Who a device is and what it may do on the embedded broker (SECURITY.md "Agent").
 *
 * Identity, decided once at CONNECT (first rule that applies):
 * 1. A verified TLS client certificate (the socket says `authorized`): identity = its subject CN, which must be a
 *    device id. The password is not checked. A username, if sent, must equal the CN (else CONNACK 5).
 * 2. `requireClientCert` and no verified certificate: refused, CONNACK 5.
 * 3. A username: it is the device id; the password is checked against the credentials file (CONNACK 4 on any
 *    failure, even with `allowAnonymous`). Without a credentials file the username is refused (4), or accepted
 *    unverified as an anonymous client when `allowAnonymous` is on.
 * 4. Nothing: refused (CONNACK 5) unless `allowAnonymous`, then identity = the MQTT client id.
 * For 1 and 3 the client id must be the identity or empty (CONNACK 2 otherwise): aedes keys sessions by client id and
 * disconnects the older connection of an id [MQTT-3.1.4-2], so a device that may choose any client id could knock
 * any other device off the broker. (An empty id is one aedes generated: `aedes_<uuid>`.)
 *
 * ACL. Authenticated devices (certificate or password) may publish only to their own telemetry and events topics —
 * not to their errors topic, which is the agent's voice — and subscribe only to their own errors topic, exactly.
 * Anonymous clients (development) may publish to any device's telemetry and events topics and subscribe to anything:
 * an ACL keyed on an identity nobody verified protects nothing, and simulators publish for many devices.
 *
 * Refusals are counted by reason (`counters`, plus `onRefusal` for prom-client) and logged rate-limited.
 * The hooks never throw and tolerate any input (missing username, non-Buffer password, no socket).
 */
import { sparkplugMayPublish, sparkplugMaySubscribe } from './sparkplug-acl.js';
import type { AuthenticateError, Client, Subscription } from 'aedes';
import { TopicMatcher } from '../../protocol/topics.js';
import { ID_RULE, isValidId } from '../../protocol/ids.js';
import { AuthError, AuthErrorCodes, authReason, ConnackCodes, type AuthErrorCode } from './auth-errors.js';
import { CredentialStore } from './credentials.js';
import {
  LOGIN_FAILURES_MAX,
  LOGIN_WINDOW_MS,
  LoginFailures,
  remoteAddressOf,
  verifiedPeerCN,
} from './connection-identity.js';
import { RateLimitedLog, type RateLimitedLogOptions, type WarnLogger } from '../../runtime/log/rate-limited-log.js';

export interface DeviceAuthConfig {
  /** development only: accept devices without credentials; default false */
  allowAnonymous: boolean;
  /** path of the file written by `otlp-edge-agent passwd`; '' = no password logins */
  credentialsFile: string;
  /** refuse every connection without a verified TLS client certificate; default false */
  requireClientCert: boolean;
  /** mqtt.sparkplug.topic_root when Sparkplug B is on ('' = off): edge nodes' topics are allowed (sparkplug-acl.ts) */
  sparkplugRoot?: string;
}

export type AuthMethod = 'certificate' | 'password' | 'anonymous';

export interface DeviceIdentity {
  readonly deviceId: string;
  readonly method: AuthMethod;
}

export type RefusalReason =
  | 'bad_credentials'
  | 'anonymous_refused'
  | 'client_cert_required'
  | 'bad_cert_identity'
  | 'identity_mismatch'
  | 'internal'
  | 'busy'
  | 'throttled'
  | 'publish_denied'
  | 'subscribe_denied';

export interface DeviceAuthorizerOptions {
  /** required when `credentialsFile` is set; `DeviceAuthorizer.create` loads it */
  credentials?: CredentialStore | null;
  /** the configured topic templates; default: agent/README.md's defaults */
  topics?: TopicMatcher;
  /** where refusals are logged (rate-limited); default: nowhere */
  logger?: WarnLogger;
  logRate?: RateLimitedLogOptions;
  /** called on every refusal, e.g. to count it in prom-client */
  onRefusal?: (reason: RefusalReason, clientId: string, detail: string) => void;
}

type AuthenticateDone = (error: AuthenticateError | null, success: boolean | null) => void;
type SubscribeDone = (error: Error | null, subscription?: Subscription | null) => void;

interface Grant extends DeviceIdentity {
  /** the two topics this device may publish to; null = any device's telemetry/events (anonymous) */
  readonly publish: readonly [string, string] | null;
  /** the one topic it may subscribe to; null = anything (anonymous) */
  readonly subscribe: string | null;
  /** for a password login: the stored hash it was checked against (a reload that changes it ends the session) */
  readonly credential?: Buffer;
}

const GENERATED_CLIENT_ID = /^aedes_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class DeviceAuthorizer {
  /** refusals since start, by reason */
  readonly counters: Record<RefusalReason, number> = {
    bad_credentials: 0,
    anonymous_refused: 0,
    client_cert_required: 0,
    bad_cert_identity: 0,
    identity_mismatch: 0,
    internal: 0,
    busy: 0,
    throttled: 0,
    publish_denied: 0,
    subscribe_denied: 0,
  };
  /** accepted connections since start, by method */
  readonly accepted: Record<AuthMethod, number> = { certificate: 0, password: 0, anonymous: 0 };

  private readonly grants = new WeakMap<object, Grant>();
  /** Clients whose CONNECT carried an empty client id (aedes then made one up). */
  private readonly emptyClientIds = new WeakSet<object>();
  private readonly failures = new LoginFailures();
  private readonly credentials: CredentialStore | null;
  private readonly topics: TopicMatcher;
  private readonly log: RateLimitedLog | null;
  private readonly onRefusal: DeviceAuthorizerOptions['onRefusal'];

  constructor(
    readonly config: Readonly<DeviceAuthConfig>,
    options: DeviceAuthorizerOptions = {},
  ) {
    this.credentials = options.credentials ?? null;
    if (config.credentialsFile !== '' && this.credentials === null) {
      throw new TypeError(
        `DeviceAuthorizer: credentialsFile is ${JSON.stringify(config.credentialsFile)} but no CredentialStore was given; use DeviceAuthorizer.create()`,
      );
    }
    this.topics = options.topics ?? new TopicMatcher();
    this.log = options.logger ? new RateLimitedLog(options.logger, options.logRate) : null;
    this.onRefusal = options.onRefusal;
  }

  /** Loads the credentials file (if any) and wires the authorizer. */
  static async create(
    config: DeviceAuthConfig,
    options: Omit<DeviceAuthorizerOptions, 'credentials'> = {},
  ): Promise<DeviceAuthorizer> {
    const credentials = config.credentialsFile === '' ? null : await CredentialStore.load(config.credentialsFile);
    return new DeviceAuthorizer(config, { ...options, credentials });
  }

  /**
   * Re-reads the credentials file (SIGHUP); see CredentialStore.reload. Devices that logged in with a password that
   * the new file no longer holds (removed, or replaced) must be disconnected: `stillValid` tells which.
   */
  async reload(): Promise<void> {
    await this.credentials?.reload();
  }

  /** False for a client whose password login the current credentials file no longer backs. */
  stillValid(client: object): boolean {
    const g = this.grants.get(client);
    if (g === undefined || g.method !== 'password') return true;
    const now = this.credentials?.credentialOf(g.deviceId);
    return now !== undefined && g.credential !== undefined && now.equals(g.credential);
  }

  identityOf(client: object | null | undefined): string | undefined {
    return client ? this.grants.get(client)?.deviceId : undefined;
  }

  authenticationOf(client: object | null | undefined): DeviceIdentity | undefined {
    const g = client ? this.grants.get(client) : undefined;
    return g && { deviceId: g.deviceId, method: g.method };
  }

  /** aedes `preConnect` hook: notes a CONNECT with an empty client id before aedes replaces it with its own. */
  readonly preConnect = (
    client: Client,
    packet: { clientId?: unknown },
    done: (err: Error | null, ok: boolean) => void,
  ): void => {
    if (client && packet?.clientId === '') this.emptyClientIds.add(client);
    done(null, true);
  };

  /** aedes `authenticate` hook; assign as `broker.authenticate = authorizer.authenticate`. */
  readonly authenticate = (
    client: Client,
    username: Readonly<string | undefined>,
    password: Readonly<Buffer | undefined>,
    done: AuthenticateDone,
  ): void => {
    this.decide(client, username, password).then(
      (grant) => {
        this.grants.set(client, grant);
        this.accepted[grant.method]++;
        done(null, true);
      },
      (err: unknown) => {
        const refusal =
          err instanceof AuthError
            ? err
            : new AuthError(
                AuthErrorCodes.INTERNAL,
                `authentication failed: ${(err as Error)?.message ?? String(err)}`,
                { returnCode: ConnackCodes.SERVER_UNAVAILABLE },
              );
        this.refuse(refusal.code, client, refusal.message);
        done(refusal as AuthenticateError, null);
      },
    );
  };

  /**
   * Whether this client may publish to `topic`. The broker wiring calls it inside its own `authorizePublish` (which
   * also guards `$SYS`); a `false` is already counted and logged here.
   */
  mayPublish(client: object | null | undefined, topic: string): boolean {
    const grant = client ? this.grants.get(client) : undefined;
    if (grant !== undefined) {
      if (grant.publish !== null) {
        if (topic === grant.publish[0] || topic === grant.publish[1]) return true;
      } else {
        const m = this.match(topic);
        if (m !== null && m.kind !== 'errors') return true;
      }
      const root = this.config.sparkplugRoot;
      if (root && sparkplugMayPublish(root, grant.publish === null ? topic.split('/')[3] : grant.deviceId, topic))
        return true;
    }
    const who = grant === undefined ? 'an unauthenticated client' : `device ${grant.deviceId}`;
    this.refuse(
      AuthErrorCodes.PUBLISH_DENIED,
      client,
      `${who} may not publish to ${JSON.stringify(String(topic).slice(0, 300))}`,
    );
    return false;
  }

  /** aedes `authorizeSubscribe` hook. A refused subscription gets SUBACK 0x80; the connection stays up. */
  readonly authorizeSubscribe = (client: Client, sub: Subscription, done: SubscribeDone): void => {
    const grant = client ? this.grants.get(client) : undefined;
    const topic = sub?.topic;
    if (grant !== undefined && (grant.subscribe === null || topic === grant.subscribe)) return done(null, sub);
    const root = this.config.sparkplugRoot;
    if (grant !== undefined && root && sparkplugMaySubscribe(root, grant.deviceId, String(topic)))
      return done(null, sub);
    const who = grant === undefined ? 'an unauthenticated client' : `device ${grant.deviceId}`;
    this.refuse(
      AuthErrorCodes.SUBSCRIBE_DENIED,
      client,
      `${who} may not subscribe to ${JSON.stringify(String(topic).slice(0, 300))}`,
    );
    done(null, null);
  };

  private async decide(client: Client, username: unknown, password: unknown): Promise<Grant> {
    if (client === null || typeof client !== 'object')
      throw refusal(
        AuthErrorCodes.INTERNAL,
        ConnackCodes.SERVER_UNAVAILABLE,
        'authenticate was called without a client',
      );
    const clientId = typeof client?.id === 'string' ? client.id : '';
    const cert = verifiedPeerCN(client);

    if (cert.verified) {
      const cn = cert.cn;
      if (typeof cn !== 'string' || !isValidId(cn)) {
        throw refusal(
          AuthErrorCodes.BAD_CERT_IDENTITY,
          ConnackCodes.NOT_AUTHORIZED,
          `client certificate CN ${quote(cn)} is not one device id (${ID_RULE})`,
        );
      }
      if (username !== undefined && username !== cn) {
        throw refusal(
          AuthErrorCodes.IDENTITY_MISMATCH,
          ConnackCodes.NOT_AUTHORIZED,
          `username ${quote(username)} differs from the client certificate CN ${quote(cn)}`,
        );
      }
      this.checkClientId(client, clientId, cn);
      return this.grant(cn, 'certificate');
    }
    if (this.config.requireClientCert) {
      throw refusal(
        AuthErrorCodes.CLIENT_CERT_REQUIRED,
        ConnackCodes.NOT_AUTHORIZED,
        `no verified client certificate${cert.problem ? ` (${cert.problem})` : ''}`,
      );
    }
    if (username !== undefined) {
      if (typeof username !== 'string' || !isValidId(username)) {
        throw refusal(
          AuthErrorCodes.BAD_CREDENTIALS,
          ConnackCodes.BAD_USERNAME_OR_PASSWORD,
          `username ${quote(username)} is not a device id (${ID_RULE})`,
        );
      }
      if (this.credentials === null) {
        if (this.config.allowAnonymous) return this.grant(username, 'anonymous');
        throw refusal(
          AuthErrorCodes.BAD_CREDENTIALS,
          ConnackCodes.BAD_USERNAME_OR_PASSWORD,
          `device ${username}: no credentials file is configured`,
        );
      }
      this.checkClientId(client, clientId, username); // before scrypt: it is free
      const pw = Buffer.isBuffer(password) || typeof password === 'string' ? password : undefined;
      const remote = remoteAddressOf(client);
      // An address that keeps failing is refused without a password check for a while, unless this very password
      // was accepted before (free to check): a flood of bad logins cannot hold the scrypt threads.
      const until = this.failures.blockedUntil(remote);
      if (until > 0 && !this.credentials.acceptedBefore(username, pw)) {
        throw refusal(
          AuthErrorCodes.THROTTLED,
          ConnackCodes.BAD_USERNAME_OR_PASSWORD,
          `device ${username}: ${remote} failed ${LOGIN_FAILURES_MAX} logins within ${LOGIN_WINDOW_MS / 1000} s; refused without a check for ${Math.ceil((until - Date.now()) / 1000)} s more`,
        );
      }
      if (!(await this.credentials.verify(username, pw))) {
        this.failures.note(remote);
        const why = this.credentials.has(username) ? 'wrong password' : 'unknown device';
        throw refusal(
          AuthErrorCodes.BAD_CREDENTIALS,
          ConnackCodes.BAD_USERNAME_OR_PASSWORD,
          `device ${username}: ${why}`,
        );
      }
      return { ...this.grant(username, 'password'), credential: this.credentials.credentialOf(username) };
    }
    if (this.config.allowAnonymous) return this.grant(clientId, 'anonymous');
    throw refusal(
      AuthErrorCodes.ANONYMOUS_REFUSED,
      ConnackCodes.NOT_AUTHORIZED,
      'no username and no client certificate, and allow_anonymous is off',
    );
  }

  private checkClientId(client: Client, clientId: string, identity: string): void {
    // An id of aedes' pattern counts as empty only when aedes made it: a device that sends a look-alike could take
    // the session of a client whose id aedes generated.
    const generated = this.emptyClientIds.has(client) && GENERATED_CLIENT_ID.test(clientId);
    if (clientId !== identity && !generated) {
      throw refusal(
        AuthErrorCodes.IDENTITY_MISMATCH,
        ConnackCodes.IDENTIFIER_REJECTED,
        `client id ${quote(clientId)} differs from device id ${quote(identity)}; connect with client id ${quote(identity)} or an empty one`,
      );
    }
  }

  private grant(deviceId: string, method: AuthMethod): Grant {
    if (method === 'anonymous') return { deviceId, method, publish: null, subscribe: null };
    return {
      deviceId,
      method,
      publish: [this.topics.topicFor('telemetry', deviceId), this.topics.topicFor('events', deviceId)],
      subscribe: this.topics.topicFor('errors', deviceId),
    };
  }

  private match(topic: string): ReturnType<TopicMatcher['match']> {
    try {
      return typeof topic === 'string' ? this.topics.match(topic) : null;
    } catch {
      return null; // a topic of the right shape with a malformed device id
    }
  }

  private refuse(code: AuthErrorCode, client: object | null | undefined, detail: string): void {
    const reason = authReason(code) as RefusalReason;
    this.counters[reason]++;
    const c = client as { id?: unknown; conn?: { remoteAddress?: unknown } } | null | undefined;
    const clientId = typeof c?.id === 'string' ? c.id.slice(0, 256) : '';
    try {
      this.onRefusal?.(reason, clientId, detail);
    } catch {
      /* a metrics callback must not break the broker */
    }
    const remote = typeof c?.conn?.remoteAddress === 'string' ? c.conn.remoteAddress : undefined;
    this.log?.warn(reason, { code, reason, clientId, remote }, `device refused: ${detail}`);
  }
}

function refusal(code: AuthErrorCode, returnCode: number, message: string): AuthError {
  return new AuthError(code, message, { returnCode });
}

function quote(v: unknown): string {
  return JSON.stringify(
    typeof v === 'string' ? v.slice(0, 200) : v === undefined ? 'undefined' : String(v).slice(0, 200),
  );
}
