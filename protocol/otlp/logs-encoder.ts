import type { DeviceEvents } from '../payload/types.js';
import { writeAnyValue, writeKeyValue } from './any-value.js';
import { resolveEncoderOptions, type EncoderOptions } from './options.js';
import { ResourceTemplate } from './resource.js';
import { ProtoWriter, Wire } from './writer.js';

/**
 * Encodes device events as one OTLP `ExportLogsServiceRequest`: one ResourceLogs per device (the same Resource as
 * its metrics), one ScopeLogs, one LogRecord per event.
 *
 * Field numbers (opentelemetry/proto/logs/v1/logs.proto):
 *   ExportLogsServiceRequest.resource_logs = 1   ResourceLogs { resource = 1, scope_logs = 2 }
 *   ScopeLogs { scope = 1, log_records = 2 }
 *   LogRecord { time_unix_nano = 1 (fixed64), severity_number = 2, severity_text = 3, body = 5, attributes = 6,
 *               observed_time_unix_nano = 11 (fixed64) }
 */
export class LogsEncoder {
  private readonly template: ResourceTemplate;
  private readonly w = new ProtoWriter(16 * 1024);

  constructor(options: EncoderOptions) {
    this.template = new ResourceTemplate(resolveEncoderOptions(options));
  }

  encode(batch: readonly DeviceEvents[]): Uint8Array {
    const w = this.w.reset();
    for (const device of batch) {
      if (device.events.length === 0) continue;
      w.fork(1);
      this.template.writeResource(w, device.deviceId);
      w.fork(2);
      w.raw(this.template.scopeField);
      for (const e of device.events) {
        w.fork(2);
        w.tag(1, Wire.FIXED64);
        w.timeFromMs(e.ts);
        if (e.severityNumber !== 0) {
          w.tag(2, Wire.VARINT);
          w.varint(e.severityNumber);
        }
        if (e.severityText !== '') w.stringField(3, e.severityText);
        writeAnyValue(w, 5, e.body);
        const attrs = e.attributes;
        if (attrs !== null)
          for (let a = 0; a < attrs.length; a += 2) writeKeyValue(w, 6, attrs[a] as string, attrs[a + 1]);
        // The agent observes the event when the device reports it; the device's ts is the best observation time known.
        w.tag(11, Wire.FIXED64);
        w.timeFromMs(e.ts);
        w.join();
      }
      w.join();
      w.join();
    }
    return w.finish();
  }
}
