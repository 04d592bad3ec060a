import * as grpc from '@grpc/grpc-js';
import { Signal } from '../../protocol/otlp/signal.js';
import { FRAME_FORMAT } from '../../protocol/uplink/frame/frame-codec.js';
import { UplinkStreamEncoder } from '../../protocol/uplink/frame/stream.js';
import { AckStatus, type FrameAck, type UplinkFrame } from '../../protocol/uplink/messages.js';

/**
 * A simulated gateway's uplink streams for the aggregator benchmarks: batches coded beforehand as the frames an
 * agent would send (one stream per aggregator address, a few batches per frame), then fed with a window of frames
 * in flight. A stream's frames can be sent only once and in order (they are coded against the stream's state).
 */

export interface StreamFrame {
  payload: Uint8Array;
  points: number;
  segments: number;
  /** Its batches repeat recorded ones (their readings were seen: cheaper for the node than new ones). */
  replayed: boolean;
}

type Batch = { otlp: Uint8Array; points: number };

/**
 * The frames of one stream: the recorded batches coded beforehand, `perFrame` to a frame; past them, the same
 * batches again under new seqs, coded as they are needed (so a short recording never runs dry), marked replayed.
 */
export class FrameSource {
  private readonly encoder = new UplinkStreamEncoder(3);
  private readonly ready: StreamFrame[] = [];
  private taken = 0;
  private replay = 0;
  private seq = 0;

  constructor(
    private readonly batches: Batch[],
    private readonly perFrame: number,
  ) {
    for (let i = 0; i < batches.length; i += perFrame)
      this.ready.push(this.code(batches.slice(i, i + perFrame), false));
  }

  private code(batches: Batch[], replayed: boolean): StreamFrame {
    const payload = this.encoder.encode(
      batches.map((b) => ({ seq: ++this.seq, signal: Signal.METRICS, points: b.points, otlp: b.otlp })),
    );
    return { payload, points: batches.reduce((n, b) => n + b.points, 0), segments: batches.length, replayed };
  }

  next(): StreamFrame {
    if (this.taken < this.ready.length) return this.ready[this.taken++];
    const batches: Batch[] = [];
    for (let k = 0; k < this.perFrame; k++) batches.push(this.batches[this.replay++ % this.batches.length]);
    return this.code(batches, true);
  }
}

/** A gateway's batches (OTLP requests, in order) → one frame source per aggregator address. */
export function frameSources(
  batches: { address: string; otlp: Uint8Array; points: number }[],
  perFrame: number,
): Map<string, FrameSource> {
  const byAddress = new Map<string, Batch[]>();
  for (const b of batches) {
    const list = byAddress.get(b.address);
    if (list) list.push(b);
    else byAddress.set(b.address, [b]);
  }
  return new Map([...byAddress].map(([a, list]) => [a, new FrameSource(list, perFrame)]));
}

type StreamStub = grpc.Client & {
  Stream(md: grpc.Metadata): grpc.ClientDuplexStream<UplinkFrame, FrameAck>;
};

/**
 * Sends frames from `frames` on one stream with at most `inFlight` unanswered, calling `acked` for each OK, until
 * `stopped()`; rejects on any other answer or a stream error.
 */
export async function feedStream(
  client: StreamStub,
  metadata: grpc.Metadata,
  agentId: string,
  bufferId: number,
  frames: FrameSource,
  inFlight: number,
  stopped: () => boolean,
  acked: (f: StreamFrame) => void,
): Promise<void> {
  const call = client.Stream(metadata);
  const waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  call.on('data', (ack: FrameAck) => {
    const w = waiting.get(ack.frame);
    waiting.delete(ack.frame);
    if (ack.status !== AckStatus.OK) w?.reject(new Error(`frame ${ack.frame}: ${AckStatus[ack.status]} ${ack.reason}`));
    else w?.resolve();
  });
  call.on('error', (e: Error) => {
    for (const w of waiting.values()) w.reject(e);
    waiting.clear();
  });
  let next = 0;
  const lane = async () => {
    while (!stopped()) {
      const i = next++;
      const f = frames.next();
      await new Promise<void>((resolve, reject) => {
        waiting.set(i + 1, { resolve, reject });
        call.write({
          frame: i + 1,
          payload: f.payload,
          points: f.points,
          segments: f.segments,
          ackedBelow: 0,
          ringVersion: 0,
          agentId: i === 0 ? agentId : '',
          bufferId: i === 0 ? bufferId : 0,
          format: i === 0 ? FRAME_FORMAT : 0,
        });
      });
      acked(f);
    }
  };
  try {
    await Promise.all(Array.from({ length: inFlight }, lane));
  } finally {
    call.end();
  }
}
