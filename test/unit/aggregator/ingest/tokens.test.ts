import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../../helpers/tmp.js';
import { AgentTokens } from '../../../../aggregator/ingest/tokens.js';
import { ApiTokens } from '../../../../aggregator/api/tokens.js';

test('agent tokens: an optional TENANT column puts the agent in a tenant', (t) => {
  const f = join(tempDir(t), 'agents');
  writeFileSync(f, '# agents\ngw-1 token-0000001 acme\ngw-1 token-0000002 acme\ngw-2 token-0000003\n');
  const tokens = AgentTokens.load(f);
  assert.equal(tokens.tenantOf('gw-1'), 'acme');
  assert.equal(tokens.tenantOf('gw-2'), '');
  assert.equal(tokens.tenanted, true);
  assert.deepEqual(tokens.agentOf('Bearer token-0000002'), { agent: 'gw-1' });
});

test('agent tokens: an agent in two tenants, or a bad tenant id, stops the load with the line', (t) => {
  const dir = tempDir(t);
  const two = join(dir, 'two');
  writeFileSync(two, 'gw-1 token-0000001 acme\ngw-1 token-0000002 globex\n');
  assert.throws(() => AgentTokens.load(two), /two:2: agent 'gw-1' is listed with tenant 'acme'.*'globex' here/);
  const mixed = join(dir, 'mixed');
  writeFileSync(mixed, 'gw-1 token-0000001 acme\ngw-1 token-0000002\n');
  assert.throws(() => AgentTokens.load(mixed), /mixed:2: agent 'gw-1'/);
  const bad = join(dir, 'bad');
  writeFileSync(bad, 'gw-1 token-0000001 "acme corp"\n');
  assert.throws(() => AgentTokens.load(bad), /bad:1: expected "AGENT_ID TOKEN \[TENANT\]"/);
  // The token is never echoed back.
  assert.throws(
    () => AgentTokens.load(bad),
    (e: Error) => !e.message.includes('token-0000001'),
  );
});

test('API tokens: a fourth column binds the token to a tenant', (t) => {
  const f = join(tempDir(t), 'api');
  writeFileSync(f, 'read-token-000000001 read viewer acme\nadmin-token-00000001 admin ops\n');
  const tokens = ApiTokens.load(f);
  assert.deepEqual(tokens.authenticate('Bearer read-token-000000001'), {
    name: 'viewer',
    role: 'read',
    tenant: 'acme',
  });
  assert.deepEqual(tokens.authenticate('Bearer admin-token-00000001'), { name: 'ops', role: 'admin' });
  writeFileSync(f, 'read-token-000000001 read viewer acme/x\n');
  assert.throws(() => ApiTokens.load(f), /:1: tenant "acme\/x"; expected "TOKEN ROLE \[NAME \[TENANT\]\]"/);
  writeFileSync(f, 'read-token-000000001 read viewer acme extra\n');
  assert.throws(() => ApiTokens.load(f), /too many fields/);
});
