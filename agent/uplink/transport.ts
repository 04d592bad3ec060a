import type { StoredBatch } from '../buffer/record.js';

/**
 * What one attempt to deliver a group of stored batches (one request) came to. Transports never throw: the sender
 * decides what each outcome means (delete, wait, move aside, back off, send alone).
 */
export type SendResult =
  /**
   * Durably accepted by the receiver, except the batches in `rejected` (never acceptable: moved aside). The others
   * may be deleted.
   */
  | { kind: 'ok'; ringVersion: number; rejected?: { seq: number; reason: string }[] }
  /** The receiver asked for the batches again later. */
  | { kind: 'retry'; afterMs: number; reason: string }
  /** The receiver will never accept these batches: move them aside, do not retry. */
  | { kind: 'rejected'; reason: string }
  /** The group could not be carried as one request (a frame the receiver could not read): send each batch alone. */
  | { kind: 'split'; reason: string }
  /** The receiver could not be reached or failed: back off and try again. */
  | { kind: 'failed'; reason: string; code: string };

export interface SendOptions {
  /** Deadline of the attempt, ms. */
  deadlineMs: number;
  /**
   * Send the batch as stored, alone, in the plainest form the receiver takes (a batch that a combined request
   * could not carry).
   */
  alone?: boolean;
}

/**
 * Carries groups of stored batches, oldest first and all for one route, as few requests as it can (the uplink
 * stream: one frame; OTLP/HTTP: one request per signal).
 */
export interface UplinkTransport {
  /** Human-readable destination, for logs. */
  readonly target: string;
  send(batches: readonly StoredBatch[], opts: SendOptions): Promise<SendResult & { wireBytes?: number }>;
  close(): Promise<void>;
}
