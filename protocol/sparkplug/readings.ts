/**
 * Sparkplug B metrics → the agent's readings, by these rules (the agent's README states them for users):
 *
 * - Each metric's timestamp (else the payload's, else the arrival time) is its reading's `ts`: metrics of one
 *   timestamp share a reading; `is_historical` metrics are stored at their own timestamps like any other (backfill).
 * - Integers (signed as their datatype says), floats and doubles are metric values; booleans 0/1; String, Text, UUID
 *   values are string attributes of their reading; a DateTime is its epoch milliseconds.
 * - A Template instance is flattened: each member becomes `<metric name>/<member name>`, nested templates likewise;
 *   template definitions (BIRTH's `_types_/…`) are not data.
 * - A string longer than an attribute may be (4,096 characters) is left out, counted.
 * - Null metrics and `is_transient` ones (not to be historized, by the specification) are left out, as are
 *   DataSet, Bytes, File and array values (no OTLP number or string holds them) — each counted by reason.
 * - `bdSeq` and the `Node Control/…` and `Device Control/…` commands are protocol, not data.
 */
import { isGoodAttributeValue, isValidName } from '../payload/shape.js';
import type { Reading } from '../payload/types.js';
import { DataType, scalarOf, type SparkplugMetric, type SparkplugPayload } from './payload.js';

/** Readings per metric count: the payload limit of 1,000 metrics per reading. */
const MAX_METRICS_PER_READING = 1000;

export type SkipReason = 'null' | 'transient' | 'unsupported_type' | 'bad_name' | 'bad_string';

export interface Mapped {
  readings: Reading[];
  skipped: { name: string; reason: SkipReason }[];
}

/** A metric's name and datatype: its own, or those its alias had in BIRTH; null for an alias never born. */
export type Resolve = (m: SparkplugMetric) => { name: string; datatype: number } | null;

export class UnknownAlias extends Error {
  constructor(readonly alias: number) {
    super(`metric alias ${alias} was not defined by a BIRTH`);
  }
}

const STRING_TYPES = new Set<number>([DataType.String, DataType.Text, DataType.UUID]);

/** True for metrics that carry the protocol, not device data. */
export function isControl(name: string): boolean {
  return name === 'bdSeq' || name.startsWith('Node Control/') || name.startsWith('Device Control/');
}

/** Maps a payload's metrics to readings (without `seq`); throws UnknownAlias for an alias `resolve` does not know. */
export function toReadings(payload: SparkplugPayload, resolve: Resolve, arrivalMs: number): Mapped {
  const byTs = new Map<number, Reading[]>();
  const skipped: Mapped['skipped'] = [];
  const defaultTs = payload.timestamp ?? arrivalMs;
  const readingAt = (ts: number): Reading => {
    let list = byTs.get(ts);
    if (list === undefined) byTs.set(ts, (list = []));
    let r = list[list.length - 1];
    if (r === undefined || r.names.length + (r.attributes?.length ?? 0) / 2 >= MAX_METRICS_PER_READING)
      list.push((r = { ts, seq: -1, names: [], values: [], attributes: null }));
    return r;
  };
  const add = (m: SparkplugMetric, name: string, datatype: number, ts: number, depth: number): void => {
    if (m.isNull) return void skipped.push({ name, reason: 'null' });
    if (m.isTransient) return void skipped.push({ name, reason: 'transient' });
    const v = m.value;
    if (v?.kind === 'template') {
      if (v.value.isDefinition) return; // a type definition in BIRTH, not data
      for (const member of v.value.metrics) {
        if (member.name === undefined) continue;
        add(member, `${name}/${member.name}`, member.datatype ?? DataType.Unknown, member.timestamp ?? ts, depth + 1);
      }
      return;
    }
    if (!isValidName(name)) return void skipped.push({ name: name.slice(0, 300), reason: 'bad_name' });
    const scalar = scalarOf(v, datatype);
    if (scalar === null) return void skipped.push({ name, reason: 'unsupported_type' });
    const text = typeof scalar === 'string' || STRING_TYPES.has(datatype) ? String(scalar) : null;
    if (text !== null && !isGoodAttributeValue(text)) return void skipped.push({ name, reason: 'bad_string' });
    const r = readingAt(ts);
    if (text !== null) (r.attributes ??= []).push(name, text);
    else {
      r.names.push(name);
      r.values.push(scalar as number);
    }
  };
  for (const m of payload.metrics) {
    const known = resolve(m);
    if (known === null) throw new UnknownAlias(m.alias ?? -1);
    if (isControl(known.name)) continue;
    add(m, known.name, m.datatype ?? known.datatype, m.timestamp ?? defaultTs, 0);
  }
  const readings: Reading[] = [];
  for (const list of byTs.values())
    for (const r of list) if (r.names.length > 0 || r.attributes !== null) readings.push(r);
  return { readings, skipped };
}
