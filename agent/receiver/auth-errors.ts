import { OtlpEdgeError } from '../../protocol/errors.js';

/**
 * The error catalogue of device security at the edge: the credentials file, the `passwd` command and the embedded
 * broker's authentication and ACL. Codes are a public contract (metrics count refusals by `reason`, operators grep
 * logs for codes); messages say what was expected and what was got, and never contain a password or a hash.
 */
export const AuthErrorCodes = {
  /** A line of the credentials file is malformed or names a device twice; the message gives file:line. */
  BAD_CREDENTIALS_FILE: 'OTLPEDGE_AUTH_BAD_CREDENTIALS_FILE',
  /** The credentials file cannot be read or written (missing, permissions, disk). */
  CREDENTIALS_UNREADABLE: 'OTLPEDGE_AUTH_CREDENTIALS_UNREADABLE',
  /** A device id (command line, username, certificate CN) is not 1–128 characters of [A-Za-z0-9._:-]. */
  BAD_DEVICE_ID: 'OTLPEDGE_AUTH_BAD_DEVICE_ID',
  /** `passwd` was given an empty password. */
  EMPTY_PASSWORD: 'OTLPEDGE_AUTH_EMPTY_PASSWORD',
  /** scrypt parameters out of the accepted range (N a power of two in [2, 2^20], r 1–32, p 1–16, ≤ 64 MiB). */
  BAD_HASH_PARAMS: 'OTLPEDGE_AUTH_BAD_HASH_PARAMS',

  // Refusals of the embedded broker. The CONNACK return code each maps to is given in brackets.
  /** [4] Unknown device, wrong password, or a username that is not a device id. */
  BAD_CREDENTIALS: 'OTLPEDGE_AUTH_BAD_CREDENTIALS',
  /** [5] No username and no client certificate, and `allow_anonymous` is off. */
  ANONYMOUS_REFUSED: 'OTLPEDGE_AUTH_ANONYMOUS_REFUSED',
  /** [5] `require_client_cert` is on and the connection has no verified client certificate. */
  CLIENT_CERT_REQUIRED: 'OTLPEDGE_AUTH_CLIENT_CERT_REQUIRED',
  /** [5] The client certificate's CN is missing, repeated, or not a device id. */
  BAD_CERT_IDENTITY: 'OTLPEDGE_AUTH_BAD_CERT_IDENTITY',
  /** [2] / [5] The client id (2) or username (5) names another device than the authenticated identity. */
  IDENTITY_MISMATCH: 'OTLPEDGE_AUTH_IDENTITY_MISMATCH',
  /** [3] Authentication itself failed (e.g. scrypt threw); the device may retry. */
  INTERNAL: 'OTLPEDGE_AUTH_INTERNAL',
  /** [3] Too many password checks are waiting (a flood of logins): the device retries later. */
  BUSY: 'OTLPEDGE_AUTH_BUSY',
  /** [4] This address failed too many logins lately; refused without a password check until the window ends. */
  THROTTLED: 'OTLPEDGE_AUTH_THROTTLED',
  /** A device published to a topic that is not its own telemetry or events topic. */
  PUBLISH_DENIED: 'OTLPEDGE_AUTH_PUBLISH_DENIED',
  /** A device subscribed to a topic other than its own errors topic (SUBACK 0x80). */
  SUBSCRIBE_DENIED: 'OTLPEDGE_AUTH_SUBSCRIBE_DENIED',
} as const;

export type AuthErrorCode = (typeof AuthErrorCodes)[keyof typeof AuthErrorCodes];

/** MQTT 3.1.1 CONNACK return codes used for refusals [MQTT-3.2.2.3]. */
export const ConnackCodes = {
  IDENTIFIER_REJECTED: 2,
  SERVER_UNAVAILABLE: 3,
  BAD_USERNAME_OR_PASSWORD: 4,
  NOT_AUTHORIZED: 5,
} as const;

export class AuthError extends OtlpEdgeError {
  declare readonly code: AuthErrorCode;
  /** CONNACK return code when this error refuses a connection; aedes reads this property. */
  readonly returnCode: number | undefined;
  constructor(code: AuthErrorCode, message: string, options: { returnCode?: number; cause?: unknown } = {}) {
    super(code, message);
    this.name = 'AuthError';
    this.returnCode = options.returnCode;
    if (options.cause !== undefined) this.cause = options.cause;
  }
  /** Metric label: the code without its prefix, lower-cased (`OTLPEDGE_AUTH_BAD_CREDENTIALS` → `bad_credentials`). */
  get reason(): string {
    return authReason(this.code);
  }
}

export function authReason(code: AuthErrorCode): string {
  return code.slice('OTLPEDGE_AUTH_'.length).toLowerCase();
}
