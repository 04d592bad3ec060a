import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fmix32, murmur3 } from '../../../../protocol/ring/hash.js';

/** A plain byte-by-byte murmur3_32, written from the reference C, to check the string fast path against. */
function referenceMurmur3(bytes: Uint8Array, seed = 0): number {
  const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));
  const scramble = (k: number) => Math.imul(rotl(Math.imul(k, 0xcc9e2d51), 15), 0x1b873593);
  let h = seed | 0;
  const blocks = bytes.length >> 2;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < blocks; i++) {
    h ^= scramble(view.getUint32(i * 4, true));
    h = (Math.imul(rotl(h, 13), 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  for (let j = bytes.length - 1; j >= blocks * 4; j--) k = (k << 8) | bytes[j];
  if ((bytes.length & 3) !== 0) h ^= scramble(k);
  return fmix32(h ^ bytes.length);
}

test('murmur3 matches the published MurmurHash3_x86_32 test vectors', () => {
  assert.equal(murmur3(''), 0);
  assert.equal(murmur3('', 1), 0x514e28b7);
  assert.equal(murmur3('', 0xffffffff), 0x81f16f39);
  assert.equal(murmur3('hello'), 0x248bfa47);
  assert.equal(murmur3('abc'), 0xb3dd93fa);
  assert.equal(murmur3('aaaa', 0x9747b28c), 0x5a97808a);
  assert.equal(murmur3('Hello, world!', 0x9747b28c), 0x24884cba);
  assert.equal(murmur3('The quick brown fox jumps over the lazy dog'), 0x2e4ff723);
});

test('ring hashes of device ids and vnode keys are pinned (a change would move devices between processes)', () => {
  // Computed once and cross-checked with an independent Python implementation of murmur3_32 over UTF-8 bytes.
  const pinned: [string, number][] = [
    ['dev-000123', 0x81bef2ef],
    ['sensor:plant7:00042', 0x892fee0d],
    ['agg-0#0', 0xb00c8f15],
    ['agg-9#127', 0x0a30478d],
    ['gerät-ü', 0xa940c9fc],
    ['😀 ok', 0x7a740940],
  ];
  for (const [s, h] of pinned) assert.equal(murmur3(s), h, `murmur3(${JSON.stringify(s)})`);
  assert.equal(fmix32(0), 0);
  assert.equal(fmix32(1), 0x514e28b7);
  assert.equal(fmix32(0xdeadbeef), 0x0de5c6a9);
});

test('the hash of any string is murmur3 of its UTF-8 bytes, whatever its length and characters', () => {
  const alphabet = ['a', 'Z', '0', '-', ':', '.', '_', 'é', 'ü', '€', '中', '😀', '\u007f', '\u0080'];
  let seed = 7;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  for (let t = 0; t < 2000; t++) {
    const ascii = t % 2 === 0;
    let s = '';
    const len = rnd(34);
    for (let i = 0; i < len; i++) s += ascii ? alphabet[rnd(7)] : alphabet[rnd(alphabet.length)];
    for (const hashSeed of [0, 0x9747b28c]) {
      assert.equal(
        murmur3(s, hashSeed),
        referenceMurmur3(Buffer.from(s, 'utf8'), hashSeed),
        `murmur3(${JSON.stringify(s)}, ${hashSeed})`,
      );
    }
  }
});
