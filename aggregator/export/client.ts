import type { Signal } from '../../protocol/otlp/signal.js';
import type { Compression } from '../../protocol/compression.js';

/** How a backend answered one export request. */
export type SendOutcome =
  /**
   * Taken; `refused` points the backend reported it did not keep (OTLP partial success), `unsupported` points the
   * protocol has no form for (never sent), with the message saying which.
   */
  | { kind: 'ok'; refused: number; unsupported?: number; message: string }
  /** Not taken now (backend down, overloaded, misconfigured credentials): kept and sent again later. */
  | { kind: 'retry'; afterMs: number | null; reason: string }
  /** Refused for good (malformed per the backend): sending it again cannot help; dropped and counted. */
  | { kind: 'rejected'; reason: string }
  /** Refused as too large: sent again in smaller requests. */
  | { kind: 'too_large'; reason: string };

export interface ExportClient {
  /** The backend, for logs. */
  readonly target: string;
  /** Whether the backend takes this signal at all (remote write takes metrics only). */
  takes(signal: Signal): boolean;
  /** One request made of `requests` (inflated Export*ServiceRequests of one signal). */
  send(signal: Signal, requests: readonly Uint8Array[], deadlineMs: number): Promise<SendOutcome>;
  /** The compression in which it can send stored requests as they are (see sendStored), if any. */
  readonly passThrough?: Compression;
  /** One request made of stored requests all compressed as `passThrough`, sent without inflating them. */
  sendStored?(signal: Signal, stored: readonly Uint8Array[], deadlineMs: number): Promise<SendOutcome>;
  close(): Promise<void>;
}

/** What an operator should check for an HTTP status that is not the data's fault. */
export function explainHttpStatus(status: number): string {
  if (status === 401 || status === 403) return 'the backend refused the credentials: check the exporter headers';
  if (status === 404 || status === 405) return 'the backend has no receiver at this path: check the exporter endpoint';
  if (status >= 500) return 'the backend failed';
  return 'the backend refused the request';
}
