import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CompressStream } from 'zstd-napi';
import { Compression, decompress, gzip, ZstdCompressor } from '../../../protocol/compression.js';
import { ProtoError } from '../../../protocol/errors.js';

const isCompressionError = (e: unknown) => e instanceof ProtoError && e.code === 'OTLPEDGE_PROTO_BAD_COMPRESSION';
const sample = Buffer.from('temperature 21.5 humidity 40 '.repeat(2000));

test('zstd and gzip round-trip a batch', () => {
  const z = new ZstdCompressor(3).compress(sample);
  assert.ok(z.length < sample.length / 10);
  assert.deepEqual(Buffer.from(decompress(z, Compression.ZSTD)), sample);
  assert.deepEqual(Buffer.from(decompress(gzip(sample), Compression.GZIP)), sample);
  assert.equal(decompress(sample, Compression.NONE), sample);
});

test('a zstd stream without a declared size (as other OTLP clients send) is inflated', async () => {
  const stream = new CompressStream();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise((resolve) => stream.on('end', resolve));
  stream.write(sample.subarray(0, 1000));
  stream.end(sample.subarray(1000));
  await done;
  assert.deepEqual(Buffer.from(decompress(Buffer.concat(chunks), Compression.ZSTD)), sample);
});

test('a batch that would inflate past the limit is refused before it is inflated', () => {
  const bomb = new ZstdCompressor(3).compress(Buffer.alloc(8 * 1024 * 1024));
  assert.throws(() => decompress(bomb, Compression.ZSTD, 1024 * 1024), isCompressionError);
  assert.throws(
    () => decompress(gzip(Buffer.alloc(4 * 1024 * 1024)), Compression.GZIP, 1024 * 1024),
    isCompressionError,
  );
  assert.throws(() => decompress(Buffer.alloc(2048), Compression.NONE, 1024), isCompressionError);
});

test('corrupt or truncated compressed data is a coded error', () => {
  const z = new ZstdCompressor(3).compress(sample);
  assert.throws(() => decompress(z.subarray(0, z.length - 5), Compression.ZSTD), isCompressionError);
  const flipped = Buffer.from(z);
  flipped[flipped.length >> 1] ^= 0xff;
  assert.throws(() => decompress(flipped, Compression.ZSTD), isCompressionError);
  assert.throws(() => decompress(Buffer.from('not compressed at all'), Compression.ZSTD), isCompressionError);
  assert.throws(() => decompress(Buffer.from('nope'), Compression.GZIP), isCompressionError);
  assert.throws(() => decompress(sample, 7 as never), isCompressionError);
});
