/**
 * Bounds the packets of one aedes client: mqtt-packet reads the fixed header's remaining length before it buffers
 * the body, and this wraps that step to refuse a length over `max` (the connection then closes as for any protocol
 * error). aedes exposes no option for it; the hook is its parser's own state function, checked to exist so an aedes
 * upgrade that changes it fails at start, not silently.
 */
export function limitPacketSize(client: unknown, max: number, onRefused: () => void): void {
  const parser = (
    client as {
      _parser?: {
        _parseLength?: () => boolean;
        _emitError?: (e: Error) => void;
        packet?: { cmd?: string; length: number };
      };
    }
  )._parser;
  if (!parser || typeof parser._parseLength !== 'function' || typeof parser._emitError !== 'function') {
    throw new Error(
      'aedes client has no mqtt-packet parser with _parseLength/_emitError: the packet size bound cannot be applied (aedes or mqtt-packet changed)',
    );
  }
  const parseLength = parser._parseLength;
  parser._parseLength = function (this: typeof parser) {
    const done = parseLength.call(this);
    if (done && this!.packet!.length > max) {
      onRefused();
      this!._emitError!(
        new Error(`${this!.packet!.cmd ?? 'packet'} of ${this!.packet!.length} bytes exceeds the ${max}-byte limit`),
      );
      return false;
    }
    return done;
  };
}
