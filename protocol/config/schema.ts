import { formatDuration, formatSize, parseDuration, parseSize } from './units.js';
import { ID_PATTERN, ID_RULE } from '../ids.js';

/**
 * A small typed schema for YAML configuration. A schema describes every key with its default and its rule;
 * `validateConfig` walks the operator's document once, collects every problem (unknown keys, wrong types, values
 * out of range, unset environment variables) with the key path, the value and what was expected, and returns the
 * complete, typed config with defaults filled in. Pure: the caller reads the file and the environment.
 */

export type Spec =
  | { kind: 'string'; default: string; pattern?: RegExp; expect?: string; doc?: string }
  | { kind: 'int'; default: number; min: number; max: number; doc?: string }
  | { kind: 'number'; default: number; min: number; max: number; doc?: string }
  | { kind: 'bool'; default: boolean; doc?: string }
  | { kind: 'size'; default: number; min?: number; doc?: string }
  | { kind: 'duration'; default: number; min?: number; doc?: string }
  | { kind: 'enum'; values: readonly string[]; default: string; doc?: string }
  | { kind: 'list'; default: string[]; pattern?: RegExp; expect?: string; doc?: string }
  | { kind: 'map'; default: Record<string, string>; doc?: string }
  | { kind: 'object'; fields: Record<string, Spec>; doc?: string }
  /** A mapping of names (matching `key`) to mappings each checked against `item` (e.g. quotas per tenant). */
  | {
      kind: 'keyed';
      item: { kind: 'object'; fields: Record<string, Spec>; doc?: string };
      key: RegExp;
      expect: string;
      default: Record<string, never>;
      doc?: string;
    }
  /** One mapping or a list of them (e.g. `export`), each checked against `item`; the typed value is always a list. */
  | { kind: 'objects'; item: { kind: 'object'; fields: Record<string, Spec>; doc?: string }; default: []; doc?: string }
  /**
   * An ordered list of single-key mappings, the key naming which `variants` entry checks the value (e.g.
   * `processors: [ { attributes: {…} }, { redaction: {…} } ]`); the typed value is `{ kind, config }[]`.
   */
  | {
      kind: 'variants';
      variants: Record<string, { kind: 'object'; fields: Record<string, Spec>; doc?: string }>;
      /** Entries of the contract this version does not build: naming one is refused with its reason. */
      unavailable?: Record<string, string>;
      default: [];
      doc?: string;
    }
  /** A documented key this version does not implement: any value given stops the process (never silently ignored). */
  | { kind: 'unavailable'; default: undefined; doc: string };

/** The typed value a spec produces. */
export type Infer<S extends Spec> = S extends { kind: 'object'; fields: infer F extends Record<string, Spec> }
  ? { readonly [K in keyof F]: Infer<F[K]> }
  : S extends { kind: 'objects'; item: infer I extends Spec }
    ? readonly Infer<I>[]
    : S extends { kind: 'keyed'; item: infer I extends Spec }
      ? Readonly<Record<string, Infer<I>>>
      : S extends { kind: 'variants'; variants: infer V extends Record<string, Spec> }
        ? readonly { [K in keyof V]: { readonly kind: K; readonly config: Infer<V[K]> } }[keyof V][]
        : S extends { kind: 'string' | 'enum' }
          ? string
          : S extends { kind: 'int' | 'number' | 'size' | 'duration' }
            ? number
            : S extends { kind: 'bool' }
              ? boolean
              : S extends { kind: 'list' }
                ? readonly string[]
                : S extends { kind: 'map' }
                  ? Readonly<Record<string, string>>
                  : S extends { kind: 'unavailable' }
                    ? undefined
                    : never;

export const str = (d = '', extra: Partial<{ pattern: RegExp; expect: string; doc: string }> = {}) => ({
  kind: 'string' as const,
  default: d,
  ...extra,
});
export const int = (d: number, min: number, max: number, doc?: string) => ({
  kind: 'int' as const,
  default: d,
  min,
  max,
  doc,
});
export const num = (d: number, min: number, max: number, doc?: string) => ({
  kind: 'number' as const,
  default: d,
  min,
  max,
  doc,
});
export const bool = (d: boolean, doc?: string) => ({ kind: 'bool' as const, default: d, doc });
export const size = (d: string, min?: number, doc?: string) => ({
  kind: 'size' as const,
  default: parseSize(d)!,
  min,
  doc,
});
export const duration = (d: string, min?: number, doc?: string) => ({
  kind: 'duration' as const,
  default: parseDuration(d)!,
  min,
  doc,
});
export const oneOf = <V extends string>(values: readonly V[], d: V, doc?: string) => ({
  kind: 'enum' as const,
  values,
  default: d,
  doc,
});
export const list = (d: string[] = [], extra: Partial<{ pattern: RegExp; expect: string; doc: string }> = {}) => ({
  kind: 'list' as const,
  default: d,
  ...extra,
});
export const map = (doc?: string) => ({ kind: 'map' as const, default: {}, doc });
/** A key of the public contract that is not built yet: setting it is refused with `what` (what it will do). */
export const unavailable = (what: string) => ({ kind: 'unavailable' as const, default: undefined, doc: what });
/** An id key (node.id, agent.id): empty = a default taken elsewhere (the host name), else the id rule. */
export const id = (doc: string) => str('', { pattern: new RegExp(`^$|${ID_PATTERN.source}`), expect: ID_RULE, doc });
export const obj = <F extends Record<string, Spec>>(fields: F, doc?: string) => ({
  kind: 'object' as const,
  fields,
  doc,
});

/** One mapping or a list of mappings of `item`'s shape. */
export const objects = <F extends Record<string, Spec>>(
  item: { kind: 'object'; fields: F; doc?: string },
  doc?: string,
) => ({
  kind: 'objects' as const,
  item,
  default: [] as [],
  doc,
});

/** `{ <name>: <mapping> }` for any names matching `key`, each mapping checked against `item`. */
export const keyed = <F extends Record<string, Spec>>(
  item: { kind: 'object'; fields: F; doc?: string },
  key: RegExp,
  expect: string,
  doc?: string,
) => ({
  kind: 'keyed' as const,
  item,
  key,
  expect,
  default: {} as Record<string, never>,
  doc,
});

/** An ordered list of `{ <name>: <mapping> }` items, each name one of `variants`. */
export const variants = <V extends Record<string, { kind: 'object'; fields: Record<string, Spec>; doc?: string }>>(
  vs: V,
  doc?: string,
  unavailable?: Record<string, string>,
) => ({
  kind: 'variants' as const,
  variants: vs,
  unavailable,
  default: [] as [],
  doc,
});

export interface ConfigProblem {
  path: string;
  message: string;
}

export interface ValidateOptions {
  /** Environment for `${env:NAME}` (and `${env:NAME:-default}`) in string values. */
  env: Record<string, string | undefined>;
}

const ENV_REF = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

export function validateConfig<S extends Spec>(
  spec: S,
  input: unknown,
  opts: ValidateOptions,
): { config: Infer<S>; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const config = walk(spec, input, '', problems, opts) as Infer<S>;
  return { config: deepFreeze(config), problems };
}

function substitute(v: string, path: string, problems: ConfigProblem[], opts: ValidateOptions): string {
  return v.replace(ENV_REF, (_m, name: string, fallback: string | undefined) => {
    const value = opts.env[name];
    if (value !== undefined) return value;
    if (fallback !== undefined) return fallback;
    problems.push({
      path,
      message: `environment variable ${name} is not set (write \${env:${name}:-} to allow it to be empty)`,
    });
    return '';
  });
}

function walk(spec: Spec, input: unknown, path: string, problems: ConfigProblem[], opts: ValidateOptions): unknown {
  if (input === undefined || input === null) {
    if (spec.kind === 'object') return walk(spec, {}, path, problems, opts);
    return spec.default;
  }
  if (
    typeof input === 'string' &&
    spec.kind !== 'object' &&
    spec.kind !== 'objects' &&
    spec.kind !== 'keyed' &&
    spec.kind !== 'variants' &&
    spec.kind !== 'list' &&
    spec.kind !== 'map'
  ) {
    input = substitute(input, path, problems, opts);
  }
  const bad = (expected: string) => {
    problems.push({ path, message: `expected ${expected}, got ${show(input)}` });
    return spec.kind === 'object' ? walk(spec, {}, path, [], opts) : spec.default;
  };
  switch (spec.kind) {
    case 'unavailable':
      problems.push({ path, message: `not available yet in this version (${spec.doc}); remove the key` });
      return undefined;
    case 'object': {
      if (typeof input !== 'object' || Array.isArray(input)) return bad('a mapping');
      const out: Record<string, unknown> = {};
      const given = input as Record<string, unknown>;
      for (const key of Object.keys(given)) {
        if (!(key in spec.fields)) {
          problems.push({
            path: join(path, key),
            message: `unknown key; expected one of: ${Object.keys(spec.fields).join(', ')}`,
          });
        }
      }
      for (const [key, child] of Object.entries(spec.fields))
        out[key] = walk(child, given[key], join(path, key), problems, opts);
      return out;
    }
    case 'objects': {
      if (Array.isArray(input)) return input.map((x, i) => walk(spec.item, x, `${path}[${i}]`, problems, opts));
      if (typeof input !== 'object') return bad('a mapping or a list of mappings');
      return [walk(spec.item, input, path, problems, opts)];
    }
    case 'keyed': {
      if (typeof input !== 'object' || Array.isArray(input)) return bad('a mapping of names to mappings');
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(input as Record<string, unknown>)) {
        if (!spec.key.test(k)) {
          problems.push({ path: join(path, k), message: `expected a name of ${spec.expect}, got ${show(k)}` });
          continue;
        }
        out[k] = walk(spec.item, v, join(path, k), problems, opts);
      }
      return out;
    }
    case 'variants': {
      if (!Array.isArray(input)) return bad('a list');
      const names = Object.keys(spec.variants);
      const out: { kind: string; config: unknown }[] = [];
      input.forEach((item, i) => {
        const p = `${path}[${i}]`;
        const keys = item !== null && typeof item === 'object' && !Array.isArray(item) ? Object.keys(item) : [];
        const notBuilt = keys.length === 1 ? spec.unavailable?.[keys[0]] : undefined;
        if (notBuilt !== undefined) {
          problems.push({
            path: p,
            message: `${keys[0]} is not available yet in this version (${notBuilt}); remove it`,
          });
          return;
        }
        if (keys.length !== 1 || !names.includes(keys[0])) {
          problems.push({
            path: p,
            message: `expected a mapping with one key naming one of: ${names.join(', ')}; got ${keys.length > 0 ? `the keys ${keys.join(', ')}` : show(item)}`,
          });
          return;
        }
        const kind = keys[0];
        out.push({
          kind,
          config: walk(spec.variants[kind], (item as Record<string, unknown>)[kind], `${p}.${kind}`, problems, opts),
        });
      });
      return out;
    }
    case 'string':
      if (typeof input === 'number' || typeof input === 'boolean') input = String(input);
      if (typeof input !== 'string') return bad('a string');
      if (spec.pattern && !spec.pattern.test(input)) return bad(spec.expect ?? `text matching ${spec.pattern}`);
      return input;
    case 'int':
    case 'number': {
      const n = typeof input === 'string' && input.trim() !== '' ? Number(input) : input;
      const range = `from ${spec.min} to ${spec.max}`;
      if (typeof n !== 'number' || !Number.isFinite(n) || (spec.kind === 'int' && !Number.isInteger(n))) {
        return bad(`${spec.kind === 'int' ? 'an integer' : 'a number'} ${range}`);
      }
      if (n < spec.min || n > spec.max) return bad(`${spec.kind === 'int' ? 'an integer' : 'a number'} ${range}`);
      return n;
    }
    case 'bool':
      if (typeof input === 'boolean') return input;
      if (input === 'true') return true;
      if (input === 'false') return false;
      return bad('true or false');
    case 'size': {
      const n = parseSize(input);
      if (n === null) return bad(`a size such as 256MiB, 64KB or a number of bytes`);
      if (spec.min !== undefined && n < spec.min) return bad(`a size of at least ${formatSize(spec.min)}`);
      return n;
    }
    case 'duration': {
      const n = parseDuration(input);
      if (n === null) return bad('a duration such as 200ms, 30s, 5m or 7d');
      if (spec.min !== undefined && n < spec.min) return bad(`a duration of at least ${formatDuration(spec.min)}`);
      return n;
    }
    case 'enum':
      if (typeof input !== 'string' || !spec.values.includes(input)) return bad(`one of ${spec.values.join(', ')}`);
      return input;
    case 'list': {
      if (!Array.isArray(input)) return bad('a list');
      const out: string[] = [];
      input.forEach((item, i) => {
        const p = `${path}[${i}]`;
        if (typeof item !== 'string' && typeof item !== 'number') {
          problems.push({ path: p, message: `expected a string, got ${show(item)}` });
          return;
        }
        const s = substitute(String(item), p, problems, opts);
        if (spec.pattern && !spec.pattern.test(s))
          problems.push({
            path: p,
            message: `expected ${spec.expect ?? `text matching ${spec.pattern}`}, got ${show(s)}`,
          });
        else out.push(s);
      });
      return out;
    }
    case 'map': {
      if (typeof input !== 'object' || Array.isArray(input)) return bad('a mapping of names to strings');
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(input as Record<string, unknown>)) {
        if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
          problems.push({ path: join(path, k), message: `expected a string, got ${show(v)}` });
          continue;
        }
        out[k] = substitute(String(v), join(path, k), problems, opts);
      }
      return out;
    }
  }
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object') {
    for (const child of Object.values(v)) deepFreeze(child);
    Object.freeze(v);
  }
  return v;
}

/** The defaults of a schema as a YAML-ready object (sizes and durations in their readable form), for docs and tests. */
export function defaultsOf(spec: Spec): unknown {
  switch (spec.kind) {
    case 'object':
      return Object.fromEntries(
        Object.entries(spec.fields)
          .filter(([, s]) => s.kind !== 'unavailable')
          .map(([k, s]) => [k, defaultsOf(s)]),
      );
    case 'size':
      return formatSize(spec.default);
    case 'duration':
      return formatDuration(spec.default);
    default:
      return spec.default;
  }
}

/** One message for all problems, each on its own line: what the process prints before it exits. */
export function describeProblems(source: string, problems: ConfigProblem[]): string {
  const lines = problems.map((p) => `  ${p.path || '(top level)'}: ${p.message}`);
  return `invalid configuration in ${source} (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines.join('\n')}`;
}
