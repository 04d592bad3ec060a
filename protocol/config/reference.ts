import { formatDuration, formatSize } from './units.js';
import type { Spec } from './schema.js';

/**
 * A configuration reference generated from a schema: a YAML document holding every key at its default, each with a
 * comment saying what it is, its type and range. It is valid configuration (the binaries load it with `--check`),
 * and it is generated, so it cannot drift from what the binaries accept: a test compares the committed files with
 * this output. Keys of the contract that are not built yet are listed as comments only.
 */
export function renderReference(spec: Spec & { kind: 'object' }, header: string[]): string {
  const lines = header.map((l) => (l === '' ? '#' : `# ${l}`));
  lines.push('');
  walk(spec, 0, lines);
  return `${lines.join('\n')}\n`;
}

/** Column where comments start, so a file reads as a table. */
const COMMENT_COLUMN = 44;

function walk(spec: Spec & { kind: 'object' }, depth: number, out: string[]): void {
  const pad = '  '.repeat(depth);
  for (const [key, child] of Object.entries(spec.fields)) {
    if (child.kind === 'unavailable') {
      out.push(`${pad}# ${key}: not available yet in this version (${child.doc}); setting it stops the process`);
      continue;
    }
    if (child.kind === 'object') {
      out.push(withComment(`${pad}${key}:`, child.doc));
      walk(child, depth + 1, out);
      continue;
    }
    if (child.kind === 'objects') {
      // A list empty by default: its entries' keys are shown as a commented example of one entry.
      out.push(withComment(`${pad}${key}: []`, `${child.doc ?? ''}; one mapping, or a list of them, each with:`));
      const example: string[] = [];
      walk(child.item, depth + 1, example);
      for (const line of example) out.push(`${pad}#${line.slice(pad.length + 1)}`);
      continue;
    }
    if (child.kind === 'keyed') {
      // A mapping empty by default: one entry's keys are shown as a commented example.
      out.push(withComment(`${pad}${key}: {}`, `${child.doc ?? ''}; names (${child.expect}) to mappings of:`));
      const example: string[] = [];
      walk(child.item, depth + 3, example);
      out.push(`${pad}#   <name>:`);
      for (const line of example) out.push(`${pad}#${line.slice(pad.length + 1)}`);
      continue;
    }
    if (child.kind === 'variants') {
      // An ordered list empty by default: each kind of entry is shown as a commented example.
      out.push(withComment(`${pad}${key}: []`, `${child.doc ?? ''}; an ordered list, each entry one of:`));
      for (const [name, item] of Object.entries(child.variants)) {
        out.push(withComment(`${pad}#   - ${name}:`, item.doc));
        const example: string[] = [];
        walk(item, depth + 3, example);
        for (const line of example) out.push(`${pad}#${line.slice(pad.length + 1)}`);
      }
      for (const [name, why] of Object.entries(child.unavailable ?? {}))
        out.push(`${pad}#   - ${name}: not available yet in this version (${why}); naming it stops the process`);
      continue;
    }
    out.push(withComment(`${pad}${key}: ${value(child)}`, describe(child)));
  }
}

function withComment(text: string, comment: string | undefined): string {
  if (!comment) return text;
  return `${text.padEnd(Math.max(COMMENT_COLUMN, text.length + 1))}# ${comment}`;
}

function value(s: Exclude<Spec, { kind: 'object' | 'objects' | 'keyed' | 'variants' | 'unavailable' }>): string {
  switch (s.kind) {
    case 'string':
    case 'enum':
      return JSON.stringify(s.default);
    case 'size':
      return formatSize(s.default);
    case 'duration':
      return formatDuration(s.default);
    case 'list':
      return s.default.length === 0 ? '[]' : `[ ${s.default.map((v) => JSON.stringify(v)).join(', ')} ]`;
    case 'map':
      return '{}';
    default:
      return String(s.default);
  }
}

/** "what it is; type and range". */
function describe(s: Exclude<Spec, { kind: 'object' | 'objects' | 'keyed' | 'variants' | 'unavailable' }>): string {
  let type: string;
  switch (s.kind) {
    case 'string':
      type = s.expect ?? 'text';
      break;
    case 'int':
      type = `integer ${s.min}–${s.max}`;
      break;
    case 'number':
      type = `number ${s.min}–${s.max}`;
      break;
    case 'bool':
      type = 'true | false';
      break;
    case 'size':
      type = `size (256MiB, 64KB, bytes)${s.min !== undefined ? `, at least ${formatSize(s.min)}` : ''}`;
      break;
    case 'duration':
      type = `duration (200ms, 30s, 5m, 7d)${s.min !== undefined ? `, at least ${formatDuration(s.min)}` : ''}`;
      break;
    case 'enum':
      type = s.values.join(' | ');
      break;
    case 'list':
      type = `list${s.expect ? ` of ${s.expect}` : ''}`;
      break;
    case 'map':
      type = 'mapping of names to text';
      break;
  }
  return s.doc ? `${s.doc}; ${type}` : type;
}
