import { ProtoReader } from './reader.js';
import { ProtoWriter } from './writer.js';

/**
 * Log records of an ExportLogsServiceRequest kept or left out in the bytes, without decoding what they hold: how
 * the aggregator samples events. `decide(severityNumber)` answers per record: 0 leaves it out, 1 keeps it as it is,
 * and a larger number keeps it with a double attribute `adjustedCountKey` = that number (how many records it
 * stands for), so counts can be re-weighted downstream. Resources and scopes stay, even when all their records are
 * left out (the device was still heard from); everything else is copied byte for byte. Throws ProtoError for bytes
 * that cannot be read.
 */
export function filterLogRecords(
  request: Uint8Array,
  decide: (severityNumber: number) => number,
  adjustedCountKey: string,
): { request: Uint8Array; kept: number; left: number } {
  const r = new ProtoReader(request);
  const w = new ProtoWriter(request.length + 64);
  let kept = 0;
  let left = 0;
  let changed = false;
  const copy = (f: number, wire: number, at: number) => {
    r.skip(wire);
    w.tag(f, wire);
    w.raw(request.subarray(at, r.pos));
  };
  r.fields(r.end, (f, wire) => {
    const at = r.pos;
    if (f !== 1 || wire !== 2) return copy(f, wire, at);
    // ResourceLogs
    const rlEnd = r.submessageEnd();
    w.fork(1);
    r.fields(rlEnd, (rf, rw) => {
      const rat = r.pos;
      if (rf !== 2 || rw !== 2) return copy(rf, rw, rat);
      // ScopeLogs
      const slEnd = r.submessageEnd();
      w.fork(2);
      r.fields(slEnd, (sf, sw) => {
        const sat = r.pos;
        if (sf !== 2 || sw !== 2) return copy(sf, sw, sat);
        // LogRecord: its severity first, then keep, mark or leave it.
        const recEnd = r.submessageEnd();
        const body = request.subarray(r.pos, recEnd);
        const n = decide(severityOf(r, recEnd));
        r.pos = recEnd;
        if (n === 0) {
          left++;
          changed = true;
          return;
        }
        kept++;
        w.fork(2);
        w.raw(body);
        if (n !== 1) {
          changed = true;
          w.fork(6); // KeyValue attribute
          w.stringField(1, adjustedCountKey);
          w.fork(2); // AnyValue { double_value = 4 }
          w.tag(4, 1);
          w.double(n);
          w.join();
          w.join();
        }
        w.join();
      });
      w.join();
    });
    w.join();
  });
  return { request: changed ? w.finish() : request, kept, left };
}

function severityOf(r: ProtoReader, end: number): number {
  let severity = 0;
  r.fields(end, (f, w) => {
    if (f === 2 && w === 0) severity = r.varint();
    else r.skip(w);
  });
  return severity;
}
