/**
 * The buffer's LevelDB key scheme (circular-buffer.ts). Keys are latin1 strings, values bytes:
 *
 *   meta:format          "1"; "2" once it holds packed records (an agent that reads only format 1 refuses it)
 *   meta:state           JSON { nextSeq, bufferId, droppedBatches, droppedPoints, appendedBatches, appendedPoints, … }
 *   b:<seq as 16 hex>    batch record: [1 format][1 signal][1 compression][1 route length R][4 points LE]
 *                                      [8 created ms, float64 LE][R bytes route] then the compressed OTLP request
 *                        (route: the aggregator address the batch was formed for, '' = any; ring-aware uplink)
 *                        or a packed record: several batches under the first one's seq, each keeping its seq (pack.ts)
 *   i:<seq as 16 hex>    index entry:  [4 record bytes LE][4 points LE][1 signal][8 created ms, float64 LE]
 *   s:<name>             side state of a receiver, JSON (s:sp:<group>/<edge node>: a Sparkplug edge node's births,
 *                        aliases and seq; sparkplug-state.ts); not counted in the cap
 *   x:<seq as 16 hex>    a batch the receiver REJECTED, moved aside (never retried, kept for inspection);
 *                        bounded to 1/16 of the cap, oldest dropped first; `xr:<seq>` holds the reason text
 *
 *         oldest                                    newest
 *   i:  [ seq 41 ][ seq 42 ][ seq 43 ] … [ seq 97 ]           ← read at open: sizes without reading batches
 *   b:  [ seq 41 ][ seq 42 ][ seq 43 ] … [ seq 97 ]   next = 98 (meta:state, never reused)
 */

export const INDEX_PREFIX = 'i:';
export const BATCH_PREFIX = 'b:';
export const QUARANTINE_PREFIX = 'x:';
export const REASON_PREFIX = 'xr:';
export const STATE_KEY = 'meta:state';
export const SIDE_PREFIX = 's:';
export const FORMAT_KEY = 'meta:format';

export const key = (prefix: string, seq: number) => prefix + seq.toString(16).padStart(16, '0');
export const seqOf = (k: string) => parseInt(k.slice(2), 16);
