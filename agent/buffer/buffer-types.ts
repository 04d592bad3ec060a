/** The buffer's options, persistent counters and figures (circular-buffer.ts). */

export interface BufferOptions {
  /** Directory of the LevelDB database. */
  dir: string;
  /** Cap on stored record bytes; 256 MiB by default (`buffer.max_bytes`). */
  maxBytes: number;
  /** fsync each write; default true. Tests of the cap may turn it off for speed. */
  sync?: boolean;
}

export interface BufferState {
  nextSeq: number;
  /**
   * Random, made with the buffer and sent with every batch (UplinkBatch.buffer_id): a wiped data directory makes a
   * new one, so the aggregator knows seqs start again from 1 rather than taking them for retries.
   */
  bufferId: number;
  droppedBatches: number;
  droppedPoints: number;
  appendedBatches: number;
  appendedPoints: number;
  /** Batches (and their points) the receiver rejected and that were moved aside. */
  rejectedBatches: number;
  rejectedPoints: number;
}

export interface BufferStats extends BufferState {
  batches: number;
  bytes: number;
  points: number;
  maxBytes: number;
  oldestSeq: number | null;
  newestSeq: number | null;
  /** When the oldest stored batch was created (epoch ms), or null when empty: the backlog's age. */
  oldestCreatedMs: number | null;
  /** Rejected batches currently kept aside, and their bytes. */
  quarantinedBatches: number;
  quarantinedBytes: number;
}

export interface AppendResult {
  seq: number;
  droppedBatches: number;
  droppedPoints: number;
}
