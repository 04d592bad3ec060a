import type { StoredBatch } from '../buffer/record.js';

/** The sender's limits on one request and on how long a batch waits for company (sender.ts). */
export interface RequestLimits {
  maxDelayMs: number;
  maxRequestPoints: number;
  maxRequestBytes: number;
  maxRequestBatches: number;
}

/** The limits of one request unless configured otherwise (the OTLP/HTTP transport cuts packed records to them). */
export const REQUEST_LIMITS: Readonly<RequestLimits> = Object.freeze({
  maxDelayMs: 50,
  maxRequestPoints: 16_384,
  maxRequestBytes: 4 << 20,
  maxRequestBatches: 4096,
});

export interface NextRequest {
  /** Positions in the queue of the request's batches (ascending), or null when none is ready. */
  positions: number[] | null;
  /** Their stored bytes (what the bandwidth cap is first charged). */
  bytes: number;
  /** One batch to send alone (a combined request could not carry it). */
  alone: boolean;
  /** When the earliest request not ready now will be (Infinity: none waits). */
  dueAt: number;
}

/**
 * The first request that is ready: the oldest sendable batch and the batches after it of the same route, up to
 * the request limits. Ready when full, when more of its route wait beyond it, or when its oldest batch has waited
 * maxDelay. Otherwise null and when the earliest one will be ready.
 */
export function nextRequest(
  queue: readonly StoredBatch[],
  now: number,
  o: RequestLimits,
  alone: ReadonlySet<number>,
  notBefore: ReadonlyMap<number, number>,
): NextRequest {
  let dueAt = Infinity;
  const seenRoutes = new Set<string>();
  for (let i = 0; i < queue.length; i++) {
    const first = queue[i];
    const hold = notBefore.get(first.seq);
    if (hold !== undefined && hold > now) {
      dueAt = Math.min(dueAt, hold);
      continue;
    }
    if (alone.has(first.seq)) return { positions: [i], bytes: first.payload.length, alone: true, dueAt };
    if (seenRoutes.has(first.route)) continue;
    seenRoutes.add(first.route);
    const picked = [i];
    let points = first.points;
    let bytes = first.payload.length;
    let full = false;
    for (let j = i + 1; j < queue.length; j++) {
      const b = queue[j];
      if (b.route !== first.route || alone.has(b.seq) || (notBefore.get(b.seq) ?? 0) > now) continue;
      if (
        picked.length >= o.maxRequestBatches ||
        points + b.points > o.maxRequestPoints ||
        bytes + b.payload.length > o.maxRequestBytes
      ) {
        full = true;
        break;
      }
      picked.push(j);
      points += b.points;
      bytes += b.payload.length;
    }
    const ready = full || points >= o.maxRequestPoints || first.createdMs + o.maxDelayMs <= now;
    if (ready) return { positions: picked, bytes, alone: false, dueAt };
    dueAt = Math.min(dueAt, first.createdMs + o.maxDelayMs);
  }
  return { positions: null, bytes: 0, alone: false, dueAt };
}
