/**
 * The ring's hash: MurmurHash3 x86_32 of a string's UTF-8 bytes, plus its 32-bit finalizer `fmix32`.
 *
 * Why murmur3_32: it has well-studied avalanche and uniformity (the ring's balance rests on positions and device
 * hashes being uniform), it is specified byte by byte so every platform and every language that may one day have to
 * agree with the ring (firmware, a Go or Python tool) gets the same value, and it needs nothing but 32-bit integer
 * multiplies, which JS does exactly with Math.imul. Hashes from node:crypto allocate and cost a native call per
 * lookup; FNV-1a is as cheap but has no finalizer, so ids that differ only in their last characters (`dev-000123`,
 * `dev-000124`: the usual case) are spread less evenly.
 *
 * ASCII strings — every valid device id (`[A-Za-z0-9._:-]`) — are hashed straight from char codes with no allocation:
 * for ASCII, UTF-16 code units and UTF-8 bytes are the same numbers. Anything else is encoded to UTF-8 first, so a
 * non-ASCII member id still hashes as its UTF-8 bytes (lone surrogates become U+FFFD, as TextEncoder does).
 *
 * The function, the seed (0) and the byte order (little-endian blocks, as in the reference C) are part of the
 * cluster's contract: every node and agent must place devices alike. Test vectors pinning it are in
 * test/unit/protocol/ring/hash.test.ts.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;
const utf8 = new TextEncoder();

/** One 4-byte block into the running state. */
function mixBlock(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/**
 * murmur3's finalizer: a bijection on 32-bit integers with full avalanche. The ring also uses it to derive a device's
 * extra probe positions from its hash, which is cheaper than hashing the id again.
 */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function finish(h: number, k: number, tailBytes: number, len: number): number {
  if (tailBytes > 0) {
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  return fmix32(h ^ len);
}

function hashBytes(b: Uint8Array, seed: number): number {
  let h = seed | 0;
  const n = b.length;
  const blocks = n & ~3;
  for (let i = 0; i < blocks; i += 4) h = mixBlock(h, b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24));
  let k = 0;
  const tail = n & 3;
  if (tail === 3) k ^= b[blocks + 2] << 16;
  if (tail >= 2) k ^= b[blocks + 1] << 8;
  if (tail >= 1) k ^= b[blocks];
  return finish(h, k, tail, n);
}

/** murmur3_32 of the UTF-8 bytes of `s` with `seed`, as an unsigned 32-bit integer. */
export function murmur3(s: string, seed = 0): number {
  const n = s.length;
  let h = seed | 0;
  let i = 0;
  // ASCII fast path: four chars are one block. At the first char above 0x7f, start over on the UTF-8 bytes
  // (rare: device ids are ASCII by rule, member ids are host names).
  for (; i + 4 <= n; i += 4) {
    const a = s.charCodeAt(i);
    const b = s.charCodeAt(i + 1);
    const c = s.charCodeAt(i + 2);
    const d = s.charCodeAt(i + 3);
    if ((a | b | c | d) > 0x7f) return hashBytes(utf8.encode(s), seed);
    h = mixBlock(h, a | (b << 8) | (c << 16) | (d << 24));
  }
  let k = 0;
  const tail = n - i;
  for (let j = tail - 1; j >= 0; j--) {
    const c = s.charCodeAt(i + j);
    if (c > 0x7f) return hashBytes(utf8.encode(s), seed);
    k ^= c << (8 * j);
  }
  return finish(h, k, tail, n);
}
