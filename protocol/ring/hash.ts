/**
 * MurmurHash3 (x86, 32-bit) of a string's UTF-8 bytes: the ring's hash. Chosen because it is small, has well-studied
 * avalanche and uniformity (what the ring's balance rests on), is the same on every platform and in every
 * language that might one day need to agree with the ring, and runs in plain 32-bit integer arithmetic in JS.
 * ASCII ids — nearly all device ids — are hashed straight from char codes with no allocation.
 *
 * The function and its seed are part of the cluster's contract: every node and agent must place devices alike.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;
const utf8 = new TextEncoder();

function mix(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number, k: number, tail: number, len: number): number {
  if (tail > 0) {
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function bytesHash(b: Uint8Array, seed: number): number {
  let h = seed | 0;
  const n = b.length;
  const blocks = n & ~3;
  for (let i = 0; i < blocks; i += 4) h = mix(h, b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24));
  let k = 0;
  const tail = n & 3;
  if (tail === 3) k ^= b[blocks + 2] << 16;
  if (tail >= 2) k ^= b[blocks + 1] << 8;
  if (tail >= 1) k ^= b[blocks];
  return finish(h, k, tail, n);
}

/** murmur3_32(UTF-8 bytes of `s`, seed). */
export function murmur3(s: string, seed = 0): number {
  const n = s.length;
  let h = seed | 0;
  let i = 0;
  // ASCII fast path: four chars make one block; bail out to the byte path at the first non-ASCII char.
  for (; i + 4 <= n; i += 4) {
    const a = s.charCodeAt(i);
    const b = s.charCodeAt(i + 1);
    const c = s.charCodeAt(i + 2);
    const d = s.charCodeAt(i + 3);
    if ((a | b | c | d) > 0x7f) return bytesHash(utf8.encode(s), seed);
    h = mix(h, a | (b << 8) | (c << 16) | (d << 24));
  }
  let k = 0;
  const tail = n - i;
  for (let j = tail - 1; j >= 0; j--) {
    const c = s.charCodeAt(i + j);
    if (c > 0x7f) return bytesHash(utf8.encode(s), seed);
    k ^= c << (8 * j);
  }
  return finish(h, k, tail, n);
}
