/**
 * Device credentials for the embedded broker: the file named by `mqtt.broker.credentials_file`, written by
 * `otlp-edge-agent passwd`.
 *
 * File format, version 1 (UTF-8 text, one device per line):
 *
 *     # comments and blank lines are kept by `passwd`
 *     DEVICE_ID:$scrypt$N=16384,r=8,p=1$SALT$HASH
 *
 * - DEVICE_ID: 1–128 chars of [A-Za-z0-9._:-]. It may contain `:`, never `$`, so the separator is the `:` right
 *   before the first `$`. A device appears at most once.
 * - The part after it is a self-describing hash string: `$scrypt$` names the scheme (a future scheme gets its own
 *   name, so both can live in one file), then the scrypt cost parameters, then salt and derived key in standard
 *   base64 (padding optional). `passwd` writes a 16-byte random salt and a 32-byte key with the parameters above.
 *   Accepted when reading: N a power of two in [2, 2^20], r 1–32, p 1–16, 128·N·r ≤ 64 MiB, salt 8–64 bytes,
 *   key 16–64 bytes.
 *
 * Why a cache: scrypt costs tens of ms and 16 MiB by design, so 10,000 devices reconnecting after an agent restart
 * would keep the libuv pool (which LevelDB shares) busy for minutes at every reconnect storm. After one successful
 * scrypt a device's accepted password is remembered as HMAC-SHA256 under a random per-store key (never the password
 * itself) and later logins compare against that first. Wrong passwords always pay the full scrypt, and so do unknown
 * devices (against a dummy hash), so neither brute force nor user enumeration by timing gets cheaper.
 */
import { createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { open, readFile, rename, unlink, chmod, chown, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ID_RULE, isValidId } from '../../protocol/ids.js';
import { AuthError, AuthErrorCodes } from './auth-errors.js';
import { Gate } from './hash-gate.js';

export interface ScryptParams {
  /** CPU/memory cost, a power of two; default 16384 */
  N: number;
  /** block size; default 8 */
  r: number;
  /** parallelism; default 1 */
  p: number;
}

export const DEFAULT_SCRYPT_PARAMS: Readonly<ScryptParams> = Object.freeze({ N: 16384, r: 8, p: 1 });
const SALT_BYTES = 16;
const KEY_BYTES = 32;
const MAX_SCRYPT_MEMORY = 64 * 1024 * 1024;
const EXPECTED_LINE = 'DEVICE_ID:$scrypt$N=16384,r=8,p=1$SALT$HASH as written by `otlp-edge-agent passwd`';

interface ParsedHash {
  params: ScryptParams;
  salt: Buffer;
  hash: Buffer;
}

/** Hashes a password into the self-describing string stored after `DEVICE_ID:`. */
export async function hashPassword(
  password: string | Buffer,
  params: ScryptParams = DEFAULT_SCRYPT_PARAMS,
): Promise<string> {
  const problem = paramsProblem(params);
  if (problem !== null) throw new AuthError(AuthErrorCodes.BAD_HASH_PARAMS, `scrypt parameters: ${problem}`);
  const salt = randomBytes(SALT_BYTES);
  const key = await scryptKey(toBuffer(password), salt, params, KEY_BYTES);
  return `$scrypt$N=${params.N},r=${params.r},p=${params.p}$${b64(salt)}$${b64(key)}`;
}

/** Checks a password against a string made by `hashPassword`; throws if `encoded` is malformed. */
export async function verifyPassword(encoded: string, password: string | Buffer): Promise<boolean> {
  const parsed = parseHash(encoded);
  if (typeof parsed === 'string') throw new AuthError(AuthErrorCodes.BAD_CREDENTIALS_FILE, `password hash: ${parsed}`);
  const key = await scryptKey(toBuffer(password), parsed.salt, parsed.params, parsed.hash.length);
  return timingSafeEqual(key, parsed.hash);
}

export interface CredentialStoreOptions {
  /** scrypt computations allowed at once, so a reconnect storm leaves libuv threads to LevelDB; default 2 */
  maxConcurrentHashes?: number;
  /**
   * scrypt computations allowed to wait; past it a login is refused at once (OTLPEDGE_AUTH_BUSY) instead of queuing
   * behind a flood; default 64 (about 1.5 s of work at 2 at once)
   */
  maxWaitingHashes?: number;
}

/** The credentials file in memory; see the format at the top of this module. */
export class CredentialStore {
  readonly path: string;
  private entries: Map<string, ParsedHash>;
  /** device id → HMAC of the password scrypt last accepted for it */
  private readonly accepted = new Map<string, Buffer>();
  private readonly cacheKey = randomBytes(32);
  private generation = 0;
  private readonly gate: Gate;
  private scryptCount = 0;
  private cacheHitCount = 0;

  private constructor(path: string, entries: Map<string, ParsedHash>, options: CredentialStoreOptions) {
    this.path = path;
    this.entries = entries;
    this.gate = new Gate(Math.max(1, options.maxConcurrentHashes ?? 2), Math.max(0, options.maxWaitingHashes ?? 64));
  }

  /** Reads and validates the whole file; a malformed line stops loading (OTLPEDGE_AUTH_BAD_CREDENTIALS_FILE). */
  static async load(path: string, options: CredentialStoreOptions = {}): Promise<CredentialStore> {
    return new CredentialStore(path, entriesOf(parseLines(await readText(path), path)), options);
  }

  /**
   * Re-reads the file (e.g. on SIGHUP) and forgets every cached verification. If the new file is unreadable or
   * malformed this throws and the previous credentials stay in force, so a typo cannot lock out the whole fleet.
   */
  async reload(): Promise<void> {
    const entries = entriesOf(parseLines(await readText(this.path), this.path));
    this.entries = entries;
    this.accepted.clear();
    this.generation++;
  }

  get size(): number {
    return this.entries.size;
  }

  has(deviceId: string): boolean {
    return this.entries.has(deviceId);
  }

  /** The stored hash of a device's credential (changes when its password is replaced), or undefined. */
  credentialOf(deviceId: string): Buffer | undefined {
    return this.entries.get(deviceId)?.hash;
  }

  /** Work done so far, for tests and metrics: scrypt computations and logins answered from the cache. */
  get stats(): { scrypt: number; cacheHits: number; cached: number } {
    return { scrypt: this.scryptCount, cacheHits: this.cacheHitCount, cached: this.accepted.size };
  }

  /** True when this password was accepted for this device before (no scrypt): a login that costs nothing. */
  acceptedBefore(deviceId: string, password: Buffer | string | undefined | null): boolean {
    const cached = typeof deviceId === 'string' ? this.accepted.get(deviceId) : undefined;
    if (cached === undefined) return false;
    return timingSafeEqual(
      cached,
      createHmac('sha256', this.cacheKey)
        .update(toBuffer(password ?? Buffer.alloc(0)))
        .digest(),
    );
  }

  async verify(deviceId: string, password: Buffer | string | undefined | null): Promise<boolean> {
    const pw = toBuffer(password ?? Buffer.alloc(0));
    const entry = typeof deviceId === 'string' ? this.entries.get(deviceId) : undefined;
    if (entry === undefined) {
      // Same cost as a real check, so response time does not tell which devices exist.
      await this.scrypt(pw, DUMMY.salt, DEFAULT_SCRYPT_PARAMS, KEY_BYTES, false);
      return false;
    }
    const digest = createHmac('sha256', this.cacheKey).update(pw).digest();
    const cached = this.accepted.get(deviceId);
    if (cached !== undefined && timingSafeEqual(cached, digest)) {
      this.cacheHitCount++;
      return true;
    }
    const generation = this.generation;
    const key = await this.scrypt(pw, entry.salt, entry.params, entry.hash.length, true);
    const ok = timingSafeEqual(key, entry.hash);
    // A reload while scrypt ran may have changed this device's password: do not cache against the new file.
    if (ok && generation === this.generation) this.accepted.set(deviceId, digest);
    return ok;
  }

  /** `known`: the id is in the file; such checks go ahead of checks for unknown ids (a flood of made-up ids). */
  private scrypt(
    password: Buffer,
    salt: Buffer,
    params: ScryptParams,
    keylen: number,
    known: boolean,
  ): Promise<Buffer> {
    return this.gate.run(() => {
      this.scryptCount++;
      return scryptKey(password, salt, params, keylen);
    }, known);
  }
}

/**
 * Adds or replaces one device's line, keeping every other line (comments included) as it was. The new file is
 * written beside the old one with mode 0600, fsynced, then renamed over it, so a crash leaves the old file or the
 * new one, never half of one. Two `passwd` runs at the same moment may lose one update (last rename wins).
 */
export async function upsertCredential(
  path: string,
  deviceId: string,
  password: string | Buffer,
  params: ScryptParams = DEFAULT_SCRYPT_PARAMS,
): Promise<'added' | 'replaced'> {
  checkDeviceId(deviceId);
  if (toBuffer(password).length === 0)
    throw new AuthError(
      AuthErrorCodes.EMPTY_PASSWORD,
      `the password for device ${JSON.stringify(deviceId)} is empty; expected at least one character`,
    );
  let text: string | null = null;
  try {
    text = await readText(path);
  } catch (err) {
    if ((err as { cause?: { code?: string } }).cause?.code !== 'ENOENT') throw err;
  }
  const lines = text === null ? [...NEW_FILE_HEADER] : parseLines(text, path);
  const line = `${deviceId}:${await hashPassword(password, params)}`;
  const at = lines.findIndex((l) => l.deviceId === deviceId);
  if (at >= 0) lines[at] = { raw: line, deviceId };
  else lines.push({ raw: line, deviceId });
  await writeAtomically(path, lines.map((l) => l.raw).join('\n') + '\n');
  return at >= 0 ? 'replaced' : 'added';
}

/** Throws OTLPEDGE_AUTH_BAD_DEVICE_ID naming the value and the rule. */
export function checkDeviceId(deviceId: string): void {
  if (typeof deviceId !== 'string' || !isValidId(deviceId)) {
    throw new AuthError(
      AuthErrorCodes.BAD_DEVICE_ID,
      `device id ${JSON.stringify(String(deviceId).slice(0, 200))} is invalid; expected ${ID_RULE}`,
    );
  }
}

// ---- parsing ----

interface Line {
  raw: string;
  /** set on credential lines */
  deviceId?: string;
}

const NEW_FILE_HEADER: Line[] = [
  { raw: '# otlp-edge device credentials, format v1: DEVICE_ID:$scrypt$N=…,r=…,p=…$SALT$HASH' },
  { raw: '# written by `otlp-edge-agent passwd --file FILE DEVICE_ID`; keep this file mode 0600' },
];

function parseLines(text: string, file: string): Line[] {
  const rows = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  if (rows.length > 0 && rows[rows.length - 1] === '') rows.pop();
  const seen = new Map<string, number>();
  return rows.map((raw, i) => {
    const content = raw.trim();
    if (content === '' || content.startsWith('#')) return { raw };
    const fail = (problem: string): never => {
      throw new AuthError(
        AuthErrorCodes.BAD_CREDENTIALS_FILE,
        `${file}:${i + 1}: ${problem}; expected ${EXPECTED_LINE}`,
      );
    };
    const dollar = content.indexOf('$');
    if (dollar < 1 || content[dollar - 1] !== ':') fail('no DEVICE_ID:$… separator');
    const deviceId = content.slice(0, dollar - 1);
    if (!isValidId(deviceId)) fail(`device id ${JSON.stringify(deviceId.slice(0, 140))} is not ${ID_RULE}`);
    const earlier = seen.get(deviceId);
    if (earlier !== undefined) fail(`device ${deviceId} is already defined on line ${earlier}`);
    seen.set(deviceId, i + 1);
    const parsed = parseHash(content.slice(dollar));
    if (typeof parsed === 'string') fail(`device ${deviceId}: ${parsed}`);
    return { raw, deviceId };
  });
}

function entriesOf(lines: Line[]): Map<string, ParsedHash> {
  const entries = new Map<string, ParsedHash>();
  for (const l of lines) {
    if (l.deviceId === undefined) continue;
    const content = l.raw.trim();
    entries.set(l.deviceId, parseHash(content.slice(content.indexOf('$'))) as ParsedHash);
  }
  return entries;
}

const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The hash string, or a sentence saying what is wrong with it (never echoing salt or key). */
function parseHash(encoded: string): ParsedHash | string {
  const parts = encoded.split('$');
  // '', 'scrypt', 'N=…,r=…,p=…', salt, hash
  if (parts.length !== 5 || parts[0] !== '') return 'the hash is not $SCHEME$PARAMS$SALT$HASH';
  if (parts[1] !== 'scrypt')
    return `unknown hash scheme ${JSON.stringify(parts[1].slice(0, 20))} (only "scrypt" is supported)`;
  const m = /^N=(\d{1,8}),r=(\d{1,3}),p=(\d{1,3})$/.exec(parts[2]);
  if (m === null) return 'scrypt parameters are not N=<int>,r=<int>,p=<int>';
  const params = { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  const problem = paramsProblem(params);
  if (problem !== null) return problem;
  if (!B64.test(parts[3]) || !B64.test(parts[4])) return 'salt and hash must be base64';
  const salt = Buffer.from(parts[3], 'base64');
  const hash = Buffer.from(parts[4], 'base64');
  if (salt.length < 8 || salt.length > 64) return `the salt is ${salt.length} bytes; expected 8–64`;
  if (hash.length < 16 || hash.length > 64) return `the hash is ${hash.length} bytes; expected 16–64`;
  return { params, salt, hash };
}

function paramsProblem({ N, r, p }: ScryptParams): string | null {
  if (!Number.isInteger(N) || N < 2 || N > 2 ** 20 || (N & (N - 1)) !== 0)
    return `N=${N} is not a power of two in [2, 1048576]`;
  if (!Number.isInteger(r) || r < 1 || r > 32) return `r=${r} is not in [1, 32]`;
  if (!Number.isInteger(p) || p < 1 || p > 16) return `p=${p} is not in [1, 16]`;
  if (128 * N * r > MAX_SCRYPT_MEMORY)
    return `N=${N},r=${r} needs ${(128 * N * r) / 2 ** 20} MiB; at most 64 MiB is allowed`;
  return null;
}

// ---- primitives ----

const DUMMY = { salt: randomBytes(SALT_BYTES) };

function scryptKey(password: Buffer, salt: Buffer, { N, r, p }: ScryptParams, keylen: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keylen, { N, r, p, maxmem: 128 * (N + p + 2) * r + 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

function toBuffer(v: string | Buffer | Uint8Array): Buffer {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  return Buffer.isBuffer(v) ? v : Buffer.from(v);
}

function b64(b: Buffer): string {
  return b.toString('base64').replace(/=+$/, '');
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new AuthError(
      AuthErrorCodes.CREDENTIALS_UNREADABLE,
      `cannot read credentials file ${path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await chmod(tmp, 0o600); // the umask may have narrowed it; make it exactly 0600
    // The file keeps its owner: root editing the file of an agent that runs as its own user must not lock it out.
    const before = await stat(path).catch(() => null);
    if (before && (before.uid !== process.getuid?.() || before.gid !== process.getgid?.()))
      await chown(tmp, before.uid, before.gid);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw new AuthError(
      AuthErrorCodes.CREDENTIALS_UNREADABLE,
      `cannot write credentials file ${path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  // Make the rename itself durable; not every platform lets a directory be opened, hence best effort.
  try {
    const dir = await open(dirname(path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch {
    /* best effort */
  }
}
