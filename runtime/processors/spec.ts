import { duration, int, list, obj, objects, oneOf, size, str, bool } from '../../protocol/config/schema.js';
import type { Infer } from '../../protocol/config/schema.js';

/**
 * Configuration of the processors (`processors:` in agent.yaml and aggregator.yaml): an ordered list, each entry one
 * key naming the processor. The keys' own rules are checked by the schema; what needs more than one key (a regex
 * that compiles, a key file that holds a key, a spike below its limit) by each processor's `check`, so every problem
 * is reported with its key path before the process starts.
 */

/** Which data a processor applies to; every list empty = all. Criteria given are all required (and). */
export const selectSpec = (doc: string) =>
  obj(
    {
      devices: list([], { doc: 'device id globs (`*` any characters, `?` one), e.g. plant-7-*' }),
      metrics: list([], { doc: 'metric name globs; set, the processor applies to those readings’ points only' }),
      topics: list([], { doc: 'MQTT topic filters (+ and #) the message arrived on (agent only)' }),
    },
    doc,
  );

export const memoryLimiterSpec = obj(
  {
    limit: size('0', undefined, 'hard limit of resident memory (RSS); 0 = take limit_percent'),
    limit_percent: int(0, 0, 100, 'hard limit as a percentage of the cgroup memory limit (or of host memory)'),
    spike: size('0', undefined, 'headroom under the hard limit where refusing starts; 0 = 20 % of the limit'),
    check_interval: duration('1s', 10, 'how often resident memory is read'),
  },
  'refuse new input above the soft limit (limit − spike), and also shed caches above the hard limit',
);

export const ATTRIBUTE_ACTIONS = ['insert', 'update', 'upsert', 'delete', 'hash', 'extract'] as const;

export const attributesSpec = obj(
  {
    include: selectSpec('apply to this data only'),
    exclude: selectSpec('never apply to this data'),
    actions: objects(
      obj({
        key: str('', { doc: 'attribute name the action acts on' }),
        action: oneOf(ATTRIBUTE_ACTIONS, 'upsert', 'what to do with it'),
        value: str('', { doc: 'value for insert, update and upsert' }),
        from_attribute: str('', { doc: 'insert, update, upsert: copy the value of this attribute instead' }),
        pattern: str('', {
          doc: 'extract: a regex with named groups (?<name>…), each becoming an attribute; delete, hash: a regex of keys',
        }),
        scope: oneOf(['point', 'resource'], 'point', 'the data point / event attributes, or the device Resource'),
      }),
      'applied in order',
    ),
  },
  'insert, update, upsert, delete, hash (SHA-256) or extract attributes',
);

export const REDACTION_DETECTORS = ['email', 'phone', 'card', 'ip'] as const;
export const REDACTION_STRATEGIES = ['mask', 'partial', 'hash', 'truncate', 'drop', 'encrypt'] as const;

export const redactionSpec = obj(
  {
    include: selectSpec('redact this data only'),
    exclude: selectSpec('never redact this data'),
    detectors: list([...REDACTION_DETECTORS], {
      pattern: new RegExp(`^(${REDACTION_DETECTORS.join('|')})$`),
      expect: REDACTION_DETECTORS.join(' | '),
      doc: 'built-in detectors of PII in text values',
    }),
    patterns: objects(
      obj({
        name: str('', { doc: 'what it finds (the detector label in metrics), e.g. national_id' }),
        regex: str('', { doc: 'a JavaScript regular expression, e.g. \\b\\d{3}-\\d{2}-\\d{4}\\b' }),
      }),
      'further detectors, e.g. national id formats',
    ),
    strategy: oneOf(REDACTION_STRATEGIES, 'mask', 'what replaces what a detector found'),
    keep: int(4, 0, 64, 'partial: characters kept at the end; truncate: characters kept at the start'),
    key_file: str('', {
      doc: 'hash: the HMAC-SHA256 key (at least 16 bytes); encrypt: the AES-256-GCM key (32 bytes, or 64 hex)',
    }),
    keys_allowed: list([], { doc: 'attribute keys never redacted (e.g. a firmware version that looks like an IP)' }),
    keys_blocked: list([], { doc: 'attribute keys whose whole value is always redacted' }),
    bodies: bool(true, 'redact event bodies as well as attribute values'),
  },
  'find PII in attribute values and event bodies and redact it',
);

export type MemoryLimiterConfig = Infer<typeof memoryLimiterSpec>;
export type AttributesConfig = Infer<typeof attributesSpec>;
export type RedactionConfig = Infer<typeof redactionSpec>;
export type SelectConfig = Infer<ReturnType<typeof selectSpec>>;
