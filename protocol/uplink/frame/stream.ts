import zstd from 'zstd-napi/binding.js';
import { ProtoError, ProtoErrorCodes } from '../../errors.js';
import { FrameDecoder, FrameEncoder, type Segment, type VisitorFor } from './frame-codec.js';

/**
 * Both ends of an uplink stream's coding: frames (frame-codec.ts) through one zstd stream for the stream's life,
 * flushed at the end of every frame. The compressor keeps its window across frames, so what a frame repeats from the
 * frames before it (device ids in raw segments, log bodies, dictionary entries after a reset) costs a reference.
 *
 * The window is 128 KiB (windowLog 17): at field load that spans several seconds of frames, and it bounds the memory
 * a receiver spends per stream. A receiver refuses windows over 1 MiB (windowLogMax 20).
 */

export const WINDOW_LOG = 17;
export const WINDOW_LOG_MAX = 20;
const CHUNK = 64 * 1024;

export class UplinkStreamEncoder {
  private readonly frames = new FrameEncoder();
  private readonly cctx = new zstd.CCtx();
  private out = Buffer.allocUnsafe(CHUNK);

  constructor(level = 3) {
    this.cctx.setParameter(zstd.CParameter.compressionLevel, level);
    this.cctx.setParameter(zstd.CParameter.windowLog, WINDOW_LOG);
  }

  /** The bytes of one frame on the wire (a copy the caller owns). */
  encode(segments: readonly Segment[]): Uint8Array {
    let input: Uint8Array = this.frames.encode(segments);
    let produced = 0;
    for (;;) {
      if (this.out.length - produced < CHUNK) {
        const grown = Buffer.allocUnsafe(this.out.length * 2);
        this.out.copy(grown, 0, 0, produced);
        this.out = grown;
      }
      const [left, wrote, read] = this.cctx.compressStream2(
        this.out.subarray(produced),
        input,
        zstd.EndDirective.flush,
      );
      produced += wrote;
      input = input.subarray(read);
      if (left === 0 && input.length === 0) break;
    }
    return Uint8Array.prototype.slice.call(this.out, 0, produced);
  }
}

export class UplinkStreamDecoder {
  private readonly frames = new FrameDecoder();
  private readonly dctx = new zstd.DCtx();
  private readonly chunk = Buffer.allocUnsafe(CHUNK);

  constructor() {
    this.dctx.setParameter(zstd.DParameter.windowLogMax, WINDOW_LOG_MAX);
  }

  /**
   * The segments of one frame (see FrameDecoder.decode for `visitorFor`). `maxBytes` bounds the frame body and,
   * separately, the OTLP its segments rebuild.
   * Throws ProtoError when the bytes are not the next frame of this stream: the stream must then end.
   */
  decode(payload: Uint8Array, maxBytes: number, visitorFor?: VisitorFor, rebuild = false): Segment[] {
    const parts: Buffer[] = [];
    let total = 0;
    let input = payload;
    try {
      for (;;) {
        const [, produced, consumed] = this.dctx.decompressStream(this.chunk, input);
        input = input.subarray(consumed);
        if (produced > 0) {
          total += produced;
          if (total > maxBytes)
            throw new ProtoError(ProtoErrorCodes.BAD_COMPRESSION, `frame inflates past ${maxBytes} bytes`);
          parts.push(Buffer.from(this.chunk.subarray(0, produced)));
        }
        if (input.length === 0 && produced < CHUNK) break;
        if (produced === 0 && consumed === 0) throw new Error('no progress');
      }
    } catch (e) {
      if (e instanceof ProtoError) throw e;
      throw new ProtoError(ProtoErrorCodes.BAD_COMPRESSION, `frame could not be decompressed: ${(e as Error).message}`);
    }
    return this.frames.decode(
      parts.length === 1 ? parts[0] : Buffer.concat(parts, total),
      maxBytes,
      visitorFor,
      rebuild,
    );
  }
}
