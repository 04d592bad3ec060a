import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { validateConfig } from '../../../../protocol/config/schema.js';
import { checkAttributes, compileAttributes, type AttrList } from '../../../../runtime/processors/attributes.js';
import { attributesSpec, type AttributesConfig } from '../../../../runtime/processors/spec.js';

function config(input: unknown): AttributesConfig {
  const { config, problems } = validateConfig(attributesSpec, input, { env: {} });
  assert.deepEqual(problems, []);
  return config;
}

function run(actions: unknown[], attrs: AttrList): { out: AttrList; applied: string[] } {
  const applied: string[] = [];
  const c = config({ actions });
  assert.deepEqual(checkAttributes(c, 'p'), []);
  const { point } = compileAttributes(c, (a) => applied.push(a));
  return { out: point!(attrs), applied };
}

test('insert adds a missing key and leaves a present one; update the reverse; upsert both', () => {
  assert.deepEqual(run([{ key: 'dc', value: 'dc-1', action: 'insert' }], ['a', '1']).out, ['a', '1', 'dc', 'dc-1']);
  assert.deepEqual(run([{ key: 'dc', value: 'dc-1', action: 'insert' }], ['dc', 'x']).out, ['dc', 'x']);
  assert.deepEqual(run([{ key: 'dc', value: 'dc-1', action: 'update' }], ['a', '1']).out, ['a', '1']);
  assert.deepEqual(run([{ key: 'dc', value: 'dc-1', action: 'update' }], ['dc', 'x']).out, ['dc', 'dc-1']);
  assert.deepEqual(run([{ key: 'dc', value: 'dc-1', action: 'upsert' }], ['dc', 'x']).out, ['dc', 'dc-1']);
  assert.deepEqual(run([{ key: 'dc', value: 'dc-1', action: 'upsert' }], []).out, ['dc', 'dc-1']);
});

test('from_attribute copies another attribute, and nothing when it is absent', () => {
  assert.deepEqual(run([{ key: 'b', from_attribute: 'a', action: 'insert' }], ['a', 'v']).out, ['a', 'v', 'b', 'v']);
  const input = ['c', 'v'];
  assert.equal(run([{ key: 'b', from_attribute: 'a', action: 'insert' }], input).out, input);
});

test('delete by key or by a pattern of keys; hash is SHA-256 of the value', () => {
  assert.deepEqual(run([{ key: 'a', action: 'delete' }], ['a', '1', 'b', '2']).out, ['b', '2']);
  assert.deepEqual(run([{ pattern: '^tmp_', action: 'delete' }], ['tmp_x', '1', 'b', '2', 'tmp_y', '3']).out, [
    'b',
    '2',
  ]);
  const sha = createHash('sha256').update('SN-123').digest('hex');
  assert.deepEqual(run([{ key: 'serial', action: 'hash' }], ['serial', 'SN-123']).out, ['serial', sha]);
});

test('extract turns named groups into attributes', () => {
  const { out } = run(
    [{ key: 'fw', pattern: '^(?<fw_major>\\d+)\\.(?<fw_minor>\\d+)', action: 'extract' }],
    ['fw', '4.17.2'],
  );
  assert.deepEqual(out, ['fw', '4.17.2', 'fw_major', '4', 'fw_minor', '17']);
  const same = ['fw', 'beta'];
  assert.equal(run([{ key: 'fw', pattern: '^(?<major>\\d+)', action: 'extract' }], same).out, same);
});

test('the input list is never changed (it may be shared by readings), and unchanged input is returned as is', () => {
  const input = ['a', '1'];
  const { out, applied } = run([{ key: 'a', value: '2', action: 'update' }], input);
  assert.deepEqual(input, ['a', '1']);
  assert.deepEqual(out, ['a', '2']);
  assert.deepEqual(applied, ['update']);
  const none = run([{ key: 'zz', action: 'delete' }], input);
  assert.equal(none.out, input);
  assert.deepEqual(none.applied, []);
});

test('actions split by scope: resource actions never touch point attributes', () => {
  const c = config({
    actions: [
      { key: 'site', value: 'plant-7', action: 'insert', scope: 'resource' },
      { key: 'x', value: '1', action: 'insert' },
    ],
  });
  const { point, resource } = compileAttributes(c, () => {});
  assert.deepEqual(point!([]), ['x', '1']);
  assert.deepEqual(resource!([]), ['site', 'plant-7']);
});

test('bad actions are refused with their key path and what is expected', () => {
  const problems = (input: unknown) => checkAttributes(config(input), 'processors[0].attributes');
  assert.deepEqual(problems({ actions: [{ key: 'a', action: 'insert' }] }), [
    {
      path: 'processors[0].attributes.actions[0].value',
      message: 'insert needs exactly one of value and from_attribute',
    },
  ]);
  assert.match(
    problems({ actions: [{ key: 'a', action: 'extract', pattern: '(' }] })[0].message,
    /not a valid regular/,
  );
  assert.match(problems({ actions: [{ key: 'a', action: 'extract', pattern: '\\d+' }] })[0].message, /named groups/);
  assert.match(problems({ actions: [{ action: 'delete' }] })[0].message, /required for delete/);
  assert.match(
    problems({ actions: [{ key: 'device.id', value: 'x', action: 'upsert', scope: 'resource' }] })[0].message,
    /cannot be changed/,
  );
  assert.match(
    problems({
      include: { metrics: ['temp'] },
      actions: [{ key: 'site', value: 'x', action: 'insert', scope: 'resource' }],
    })[0].path,
    /include\.metrics$/,
  );
  assert.match(problems({ actions: [] })[0].message, /at least one action/);
});
