import type { StoredBatch } from '../buffer/record.js';

/**
 * What one attempt to deliver a stored batch came to. Transports never throw: the sender decides what each outcome
 * means (delete, wait, move aside, back off).
 */
export type SendResult =
  /** Durably accepted by the receiver: the batch may be deleted. */
  | { kind: 'ok'; ringVersion: number }
  /** The receiver asked for the batch again later. */
  | { kind: 'retry'; afterMs: number; reason: string }
  /** The receiver will never accept this batch: move it aside, do not retry. */
  | { kind: 'rejected'; reason: string }
  /** The receiver could not be reached or failed: back off and try again. */
  | { kind: 'failed'; reason: string; code: string };

/** Moves bytes only: stored batches go out exactly as stored (never re-encoded). */
export interface UplinkTransport {
  /** Human-readable destination, for logs. */
  readonly target: string;
  send(batch: StoredBatch, deadlineMs: number): Promise<SendResult>;
  close(): Promise<void>;
}
