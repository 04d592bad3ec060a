import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import type { ConfigProblem } from '../../protocol/config/schema.js';
import type { AnyValue } from '../../protocol/payload/types.js';
import type { AttrList } from './attributes.js';
import { compileRegex } from './attributes.js';
import type { RedactionConfig } from './spec.js';

/**
 * PII redaction of text values (agent/README.md "Processors"). Every detector looks at the original text; what they
 * find is replaced in one pass (where two overlap, the one listed first wins), so a replacement is never read again.
 *
 * Built-in detectors, chosen to be right more often than clever:
 * - `email`: local@domain.tld.
 * - `phone`: a number with a leading `+` (7–15 digits), or 9–15 digits written with separators or an area code in
 *   parentheses (`(030) 1234 5678`, `555-123-4567`). A bare run of digits is a serial or a timestamp, not a phone,
 *   and dates have 8 digits: neither is taken. Add a `patterns` entry for other formats.
 * - `card`: 13–19 digits (spaces or dashes between groups) passing the Luhn check.
 * - `ip`: IPv4 dotted quads and IPv6 addresses (checked by node:net).
 */

interface Detector {
  name: string;
  find: RegExp;
  valid?: (text: string) => boolean;
}

const digits = (s: string) => s.replace(/\D/g, '');

function luhn(s: string): boolean {
  const d = digits(s);
  if (d.length < 13 || d.length > 19) return false;
  let sum = 0;
  for (let i = 0; i < d.length; i++) {
    let n = d.charCodeAt(d.length - 1 - i) - 48;
    if (i % 2 === 1) {
      n *= 2;
      if (n > 9) n -= 9;
    }
    sum += n;
  }
  return sum % 10 === 0;
}

function phone(s: string): boolean {
  const n = digits(s).length;
  if (s.startsWith('+')) return n >= 7 && n <= 15;
  return n >= 9 && n <= 15 && /[\s().-]/.test(s);
}

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';

const BUILT_IN: Record<string, Detector> = {
  email: { name: 'email', find: /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g },
  card: { name: 'card', find: /(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])/g, valid: luhn },
  phone: {
    name: 'phone',
    find: /(?<![\w+])(?:\+\d{7,15}|(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,5}\)[\s.-]?)?\d{2,5}(?:[\s.-]\d{2,5}){0,4})(?![\w:])/g,
    valid: phone,
  },
  ip: {
    name: 'ip',
    find: new RegExp(
      `(?<![\\w.:])(?:${OCTET}\\.){3}${OCTET}(?![\\w.:])|(?<![\\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\\w:])`,
      'g',
    ),
    valid: (s) => s.includes('.') || isIPv6(s),
  },
};

/** The order detectors run in when several are listed: the most specific first. */
const PRECEDENCE = ['card', 'email', 'ip', 'phone'];

export function checkRedaction(cfg: RedactionConfig, path: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  cfg.patterns.forEach((p, i) => {
    if (p.name === '') problems.push({ path: `${path}.patterns[${i}].name`, message: 'required (e.g. national_id)' });
    if (p.regex === '') problems.push({ path: `${path}.patterns[${i}].regex`, message: 'required' });
    else {
      const re = compileRegex(p.regex);
      if (typeof re === 'string') problems.push({ path: `${path}.patterns[${i}].regex`, message: re });
      else if (re.test('')) problems.push({ path: `${path}.patterns[${i}].regex`, message: 'matches empty text' });
    }
  });
  if (cfg.strategy === 'hash' || cfg.strategy === 'encrypt') {
    const key = readKey(cfg);
    if (typeof key === 'string') problems.push({ path: `${path}.key_file`, message: key });
  } else if (cfg.key_file !== '')
    problems.push({ path: `${path}.key_file`, message: `strategy ${cfg.strategy} uses no key; remove key_file` });
  if (cfg.detectors.length === 0 && cfg.patterns.length === 0 && cfg.keys_blocked.length === 0)
    problems.push({
      path: `${path}.detectors`,
      message: 'nothing to redact: give detectors, patterns or keys_blocked',
    });
  return problems;
}

/** The strategy's key, or what is wrong with the key file. */
function readKey(cfg: RedactionConfig): Buffer | string {
  if (cfg.key_file === '') return `required for strategy ${cfg.strategy} (a file holding the key)`;
  let raw: Buffer;
  try {
    raw = readFileSync(cfg.key_file);
  } catch (e) {
    return `cannot read ${cfg.key_file}: ${(e as Error).message}`;
  }
  const text = raw.toString('utf8').trim();
  if (cfg.strategy === 'hash')
    return raw.length >= 16 ? raw : `${cfg.key_file} holds ${raw.length} bytes; an HMAC key needs at least 16`;
  if (raw.length === 32) return raw;
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  const b64 = /^[A-Za-z0-9+/]{43}=$/.test(text) ? Buffer.from(text, 'base64') : null;
  if (b64 !== null && b64.length === 32) return b64;
  return `${cfg.key_file} is not an AES-256 key: expected 32 bytes, 64 hex characters or 32 bytes in base64 (openssl rand -hex 32 > key)`;
}

/** Applies one replacement strategy to a found piece of text; null = drop what holds it. */
type Replace = (text: string) => string | null;

function replacer(cfg: RedactionConfig): Replace {
  const keep = cfg.keep;
  switch (cfg.strategy) {
    case 'mask':
      return () => '****';
    case 'partial':
      return (t) => (t.length <= keep ? '*'.repeat(t.length) : '*'.repeat(t.length - keep) + t.slice(-keep));
    case 'truncate':
      return (t) => `${t.slice(0, Math.min(keep, t.length - 1))}…`;
    case 'drop':
      return () => null;
    case 'hash': {
      const key = readKey(cfg) as Buffer;
      return (t) => `hmac:${createHmac('sha256', key).update(t).digest('hex').slice(0, 32)}`;
    }
    case 'encrypt': {
      const key = readKey(cfg) as Buffer;
      return (t) => {
        const iv = randomBytes(12);
        const c = createCipheriv('aes-256-gcm', key, iv);
        const body = Buffer.concat([c.update(t, 'utf8'), c.final()]);
        return `enc:${Buffer.concat([iv, body, c.getAuthTag()]).toString('base64')}`;
      };
    }
  }
  throw new Error(`unknown strategy ${String(cfg.strategy)}`);
}

/** A checked redaction config, ready for the hot path; `onRedacted` counts each finding by detector. */
export class Redactor {
  private readonly detectors: Detector[];
  private readonly replace: Replace;
  private readonly allowed: ReadonlySet<string>;
  private readonly blocked: ReadonlySet<string>;
  readonly bodies: boolean;

  constructor(
    cfg: RedactionConfig,
    private readonly onRedacted: (detector: string) => void,
  ) {
    const chosen = new Set(cfg.detectors);
    this.detectors = [
      ...PRECEDENCE.filter((d) => chosen.has(d)).map((d) => BUILT_IN[d]),
      ...cfg.patterns.map((p) => ({ name: p.name, find: new RegExp(p.regex, 'g') })),
    ];
    this.replace = replacer(cfg);
    this.allowed = new Set(cfg.keys_allowed);
    this.blocked = new Set(cfg.keys_blocked);
    this.bodies = cfg.bodies;
  }

  /** Text with what the detectors find replaced; null when the strategy drops it. Returns `s` itself if clean. */
  text(s: string): string | null {
    if (s.length < 6) return s; // shorter than any address, number or email the detectors take
    let spans: [number, number, string][] | null = null;
    // Characters an earlier detector took: a per-character mask keeps the overlap check linear, where comparing each
    // finding with every earlier one let a 256 KiB body of addresses cost seconds.
    let taken: Uint8Array | null = null;
    for (const d of this.detectors) {
      d.find.lastIndex = 0;
      for (let m = d.find.exec(s); m !== null; m = d.find.exec(s)) {
        if (m[0].length === 0) {
          d.find.lastIndex++;
          continue;
        }
        if (d.valid !== undefined && !d.valid(m[0])) continue;
        const from = m.index;
        const to = from + m[0].length;
        if (taken !== null && taken.subarray(from, to).includes(1)) continue; // an earlier detector has it
        (taken ??= new Uint8Array(s.length)).fill(1, from, to);
        (spans ??= []).push([from, to, d.name]);
      }
    }
    if (spans === null) return s;
    spans.sort((a, b) => a[0] - b[0]);
    let out = '';
    let at = 0;
    for (const [from, to, name] of spans) {
      this.onRedacted(name);
      const r = this.replace(s.slice(from, to));
      if (r === null) return null;
      out += s.slice(at, from) + r;
      at = to;
    }
    return out + s.slice(at);
  }

  /** A value (string, or a structure holding strings): redacted copy, `v` itself if clean, undefined to drop. */
  value(v: AnyValue): AnyValue | undefined {
    if (typeof v === 'string') {
      const r = this.text(v);
      return r === null ? undefined : r;
    }
    if (v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) {
      let out: AnyValue[] | null = null;
      for (let i = 0; i < v.length; i++) {
        const r = this.value(v[i]);
        if (r !== v[i]) (out ??= v.slice(0, i)).push(...(r === undefined ? [] : [r]));
        else if (out !== null) out.push(r);
      }
      return out ?? v;
    }
    let out: Record<string, AnyValue> | null = null;
    const entries = Object.entries(v);
    for (let i = 0; i < entries.length; i++) {
      const [k, x] = entries[i];
      const r = this.keyed(k, x);
      if (r !== x && out === null) out = Object.fromEntries(entries.slice(0, i));
      if (out !== null && r !== undefined) out[k] = r;
    }
    return out ?? v;
  }

  /** The value of attribute `key`, by the key rules first (allowed: kept; blocked: all of it replaced). */
  keyed(key: string, v: AnyValue): AnyValue | undefined {
    if (this.allowed.has(key)) return v;
    if (this.blocked.has(key)) {
      this.onRedacted('key');
      const r = this.replace(typeof v === 'string' ? v : JSON.stringify(v));
      return r === null ? undefined : r;
    }
    return this.value(v);
  }

  /** `[key, value…]` with values redacted and dropped ones removed; `attrs` itself when clean. */
  attributes(attrs: AttrList): AttrList {
    let out: AttrList | null = null;
    for (let i = 0; i < attrs.length; i += 2) {
      const v = attrs[i + 1];
      const r = this.keyed(attrs[i] as string, v);
      if (r !== v && out === null) out = attrs.slice(0, i);
      if (out !== null && r !== undefined) out.push(attrs[i], r);
    }
    return out ?? attrs;
  }
}
