import { createHash } from 'node:crypto';
import type { ConfigProblem } from '../../protocol/config/schema.js';
import { ATTR_DEVICE_ID, ATTR_GATEWAY_ID } from '../../protocol/otlp/semconv.js';
import type { AnyValue } from '../../protocol/payload/types.js';
import type { AttributesConfig } from './spec.js';

/** Attributes as the pipeline holds them: `[key, value, key, value…]`. */
export type AttrList = AnyValue[];

/** Resource attributes the data path keys on: no processor may change them. */
const FIXED_RESOURCE_KEYS = new Set([ATTR_DEVICE_ID, ATTR_GATEWAY_ID]);

type Action = AttributesConfig['actions'][number];

/** A compiled action: returns the list it was given when nothing changed, else a new list (the input is shared). */
type Apply = (attrs: AttrList) => AttrList;

export interface CompiledAttributes {
  point: Apply | null;
  resource: Apply | null;
}

/** Problems of one attributes processor's actions, with their key paths (`processors[2].attributes.actions[0]`). */
export function checkAttributes(cfg: AttributesConfig, path: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  cfg.actions.forEach((a, i) => {
    const p = `${path}.actions[${i}]`;
    const needsValue = a.action === 'insert' || a.action === 'update' || a.action === 'upsert';
    if (a.key === '' && !((a.action === 'delete' || a.action === 'hash') && a.pattern !== ''))
      problems.push({
        path: `${p}.key`,
        message: `required for ${a.action}${a.action === 'delete' || a.action === 'hash' ? ' (or a pattern of keys)' : ''}`,
      });
    if (needsValue && (a.value === '') === (a.from_attribute === ''))
      problems.push({ path: `${p}.value`, message: `${a.action} needs exactly one of value and from_attribute` });
    if (!needsValue && (a.value !== '' || a.from_attribute !== ''))
      problems.push({ path: `${p}.value`, message: `${a.action} takes no value or from_attribute; remove them` });
    if (a.pattern !== '') {
      const re = compileRegex(a.pattern);
      if (typeof re === 'string') problems.push({ path: `${p}.pattern`, message: re });
      else if (a.action === 'extract' && !/\(\?<[A-Za-z_]/.test(a.pattern))
        problems.push({
          path: `${p}.pattern`,
          message: 'extract needs named groups, e.g. ^(?<major>\\d+)\\.(?<minor>\\d+)',
        });
      else if (needsValue) problems.push({ path: `${p}.pattern`, message: `${a.action} takes no pattern; remove it` });
    } else if (a.action === 'extract') problems.push({ path: `${p}.pattern`, message: 'required for extract' });
    if (a.scope === 'resource' && FIXED_RESOURCE_KEYS.has(a.key))
      problems.push({
        path: `${p}.key`,
        message: `${a.key} identifies the device's data end to end and cannot be changed`,
      });
  });
  if (cfg.actions.length === 0) problems.push({ path: `${path}.actions`, message: 'at least one action is required' });
  const resource = cfg.actions.some((a) => a.scope === 'resource');
  for (const sel of ['include', 'exclude'] as const)
    for (const k of ['metrics', 'topics'] as const)
      if (resource && cfg[sel][k].length > 0)
        problems.push({
          path: `${path}.${sel}.${k}`,
          message:
            'a Resource belongs to a device, not to a metric or topic: select resource actions by devices only (put them in their own attributes processor)',
        });
  return problems;
}

/** A regex, or what is wrong with it. */
export function compileRegex(source: string): RegExp | string {
  try {
    return new RegExp(source);
  } catch (e) {
    return `not a valid regular expression: ${(e as Error).message}`;
  }
}

/** The actions of a checked config, split by scope; `onApplied` counts each action that changed something. */
export function compileAttributes(cfg: AttributesConfig, onApplied: (action: string) => void): CompiledAttributes {
  const chain = (scope: 'point' | 'resource'): Apply | null => {
    const steps = cfg.actions.filter((a) => a.scope === scope).map((a) => compileAction(a, onApplied));
    if (steps.length === 0) return null;
    return (attrs) => {
      for (const step of steps) attrs = step(attrs);
      return attrs;
    };
  };
  return { point: chain('point'), resource: chain('resource') };
}

function indexOfKey(attrs: AttrList, key: string): number {
  for (let i = 0; i < attrs.length; i += 2) if (attrs[i] === key) return i;
  return -1;
}

function set(attrs: AttrList, key: string, value: AnyValue): AttrList {
  const out = attrs.slice();
  const i = indexOfKey(out, key);
  if (i >= 0) out[i + 1] = value;
  else out.push(key, value);
  return out;
}

const sha256 = (v: AnyValue): string =>
  createHash('sha256')
    .update(typeof v === 'string' ? v : JSON.stringify(v))
    .digest('hex');

function compileAction(a: Action, onApplied: (action: string) => void): Apply {
  const counted =
    (apply: Apply): Apply =>
    (attrs) => {
      const out = apply(attrs);
      if (out !== attrs) onApplied(a.action);
      return out;
    };
  const valueOf = (attrs: AttrList): AnyValue | undefined => {
    if (a.from_attribute === '') return a.value;
    const j = indexOfKey(attrs, a.from_attribute);
    return j < 0 ? undefined : attrs[j + 1];
  };
  const keyTest = a.pattern !== '' && a.key === '' ? new RegExp(a.pattern) : null;
  const matchingKeys = (attrs: AttrList): number[] => {
    const at: number[] = [];
    for (let i = 0; i < attrs.length; i += 2)
      if (keyTest !== null ? keyTest.test(attrs[i] as string) : attrs[i] === a.key) at.push(i);
    return at;
  };
  switch (a.action) {
    case 'insert':
    case 'update':
    case 'upsert':
      return counted((attrs) => {
        const present = indexOfKey(attrs, a.key) >= 0;
        if ((a.action === 'insert' && present) || (a.action === 'update' && !present)) return attrs;
        const v = valueOf(attrs);
        return v === undefined ? attrs : set(attrs, a.key, v);
      });
    case 'delete':
      return counted((attrs) => {
        const at = matchingKeys(attrs);
        if (at.length === 0) return attrs;
        return attrs.filter((_, i) => !at.includes(i - (i % 2)));
      });
    case 'hash':
      return counted((attrs) => {
        const at = matchingKeys(attrs);
        if (at.length === 0) return attrs;
        const out = attrs.slice();
        for (const i of at) out[i + 1] = sha256(out[i + 1]);
        return out;
      });
    case 'extract': {
      const re = new RegExp(a.pattern);
      return counted((attrs) => {
        const i = indexOfKey(attrs, a.key);
        if (i < 0 || typeof attrs[i + 1] !== 'string') return attrs;
        const groups = re.exec(attrs[i + 1] as string)?.groups;
        if (groups === undefined) return attrs;
        let out = attrs;
        for (const [name, value] of Object.entries(groups)) if (value !== undefined) out = set(out, name, value);
        return out;
      });
    }
  }
  throw new Error(`unknown action ${String(a.action)}`);
}
