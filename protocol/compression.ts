import { gunzipSync, gzipSync } from 'node:zlib';
import { Compressor } from 'zstd-napi';
import zstd from 'zstd-napi/binding.js';
import { ProtoError, ProtoErrorCodes } from './errors.js';

/**
 * Compression of stored and uplinked OTLP batches. zstd is the default (smaller and faster than gzip on OTLP);
 * gzip is there for OTLP/HTTP endpoints that refuse zstd.
 *
 * Decompression is bounded: a batch that would inflate past `maxBytes` is refused before the memory is taken, so a
 * hostile or corrupt frame cannot exhaust a 256 MB gateway or an aggregator.
 */

/** How a batch's bytes are compressed: the agent's stored records and uplink.proto `Compression` (same numbers). */
export enum Compression {
  NONE = 0,
  ZSTD = 1,
  GZIP = 2,
}

/** Default ceiling on one decompressed batch: 64 MiB. */
export const DEFAULT_MAX_DECOMPRESSED = 64 * 1024 * 1024;

export class ZstdCompressor {
  private readonly c = new Compressor();
  /** @param level zstd level 1–19; default 3 (`buffer.zstd_level`). */
  constructor(level = 3) {
    // The 4-byte content checksum lets a reader tell a corrupted stored batch from a good one.
    this.c.setParameters({ compressionLevel: level, checksumFlag: true });
  }
  compress(data: Uint8Array): Uint8Array {
    return this.c.compress(data);
  }
}

const CHUNK = 256 * 1024;

export function decompress(
  data: Uint8Array,
  compression: Compression,
  maxBytes = DEFAULT_MAX_DECOMPRESSED,
): Uint8Array {
  switch (compression) {
    case Compression.NONE:
      if (data.length > maxBytes) tooLarge(maxBytes);
      return data;
    case Compression.GZIP:
      try {
        return gunzipSync(data, { maxOutputLength: maxBytes });
      } catch (e) {
        throw new ProtoError(
          ProtoErrorCodes.BAD_COMPRESSION,
          `gzip payload could not be inflated within ${maxBytes} bytes: ${(e as Error).message}`,
        );
      }
    case Compression.ZSTD:
      return unzstd(data, maxBytes);
    default:
      throw new ProtoError(
        ProtoErrorCodes.BAD_COMPRESSION,
        `unknown compression ${String(compression)}; expected 0 (none), 1 (zstd) or 2 (gzip)`,
      );
  }
}

export function gzip(data: Uint8Array): Uint8Array {
  return gzipSync(data);
}

function tooLarge(maxBytes: number): never {
  throw new ProtoError(ProtoErrorCodes.BAD_COMPRESSION, `payload inflates past the limit of ${maxBytes} bytes`);
}

const dctx = new zstd.DCtx();

function unzstd(data: Uint8Array, maxBytes: number): Uint8Array {
  try {
    const declared = zstd.getFrameContentSize(data);
    if (declared !== null && declared > maxBytes) tooLarge(maxBytes);
    // Frames from the agent declare their size: one exact allocation. Others (streamed by other OTLP clients) are
    // inflated chunk by chunk and stopped at the limit.
    if (declared !== null && isSingleFrame(data)) {
      const out = Buffer.allocUnsafe(declared);
      const n = dctx.decompress(out, data);
      if (n !== declared) throw new Error(`frame declared ${declared} bytes and held ${n}`);
      return out;
    }
    const chunks: Buffer[] = [];
    let total = 0;
    let input = data;
    dctx.reset(zstd.ResetDirective.sessionOnly);
    for (;;) {
      const chunk = Buffer.allocUnsafe(CHUNK);
      const [hint, produced, consumed] = dctx.decompressStream(chunk, input);
      total += produced;
      if (total > maxBytes) tooLarge(maxBytes);
      if (produced > 0) chunks.push(chunk.subarray(0, produced));
      input = input.subarray(consumed);
      if (input.length === 0 && produced < CHUNK) {
        if (hint !== 0) throw new Error('truncated zstd frame');
        break;
      }
      if (produced === 0 && consumed === 0) throw new Error('zstd stream made no progress');
    }
    return Buffer.concat(chunks, total);
  } catch (e) {
    if (e instanceof ProtoError) throw e;
    throw new ProtoError(
      ProtoErrorCodes.BAD_COMPRESSION,
      `zstd payload could not be decompressed: ${(e as Error).message}`,
    );
  }
}

/** True when `data` is exactly one zstd frame (the agent's batches are). */
function isSingleFrame(data: Uint8Array): boolean {
  try {
    return zstd.findFrameCompressedSize(data) === data.length;
  } catch {
    return false;
  }
}
