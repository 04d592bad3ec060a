import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startAggregator } from '../../helpers/aggregator-process.js';
import { waitFor } from '../../helpers/ports.js';
import { tempDir } from '../../helpers/tmp.js';
import { metricsPayload, sendBatch } from '../../helpers/uplink-client.js';
import { AckStatus } from '../../../protocol/uplink/messages.js';

const READ = 'viewer-token-0123456789';
const ADMIN = 'admin-token-0123456789ab';

/** The audit lines the process wrote (pino JSON with the audit logger's name). */
function auditLines(output: string): any[] {
  return output
    .split('\n')
    .filter((l) => l.includes('"otlp-edge-aggregator.audit"'))
    .map((l) => JSON.parse(l));
}

test('API tokens: 401 without a valid token, 403 for a read token on DELETE, 200 by role; probes stay open; audited by name; reloaded on SIGHUP', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'api.tokens');
  writeFileSync(file, `# API tokens\n${READ} read grafana\n${ADMIN} admin ops-alice\n`);
  const agg = await startAggregator(dir, { auth: { api_tokens_file: file } });
  t.after(() => agg.kill9());
  const api = (path: string, token?: string, method = 'GET') =>
    fetch(`http://127.0.0.1:${agg.apiPort}${path}`, {
      method,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });

  const sent = await sendBatch(`127.0.0.1:${agg.grpcPort}`, {
    payload: metricsPayload(['dev-a', 'dev-b'], { temp: 21 }, 3),
    points: 12,
  });
  assert.equal(sent.ack?.status, AckStatus.OK);

  assert.match(
    agg.output(),
    /auth\.api_tokens_file is readable by other users: chmod 600/,
    'a 0644 token file is called out',
  );
  assert.equal((await api('/healthz')).status, 200);
  assert.equal((await api('/readyz')).status, 200);
  const none = await api('/v1/devices');
  assert.equal(none.status, 401);
  assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
  assert.equal(((await none.json()) as any).error.code, 'OTLPEDGE_API_UNAUTHENTICATED');
  assert.equal((await api('/v1/devices', 'not-a-known-token-at-all')).status, 401);
  assert.equal((await api('/metrics')).status, 401, '/metrics needs a token too');
  assert.equal((await api('/metrics', READ)).status, 200);
  const list = await api('/v1/devices', READ);
  assert.equal(list.status, 200);
  assert.deepEqual(
    ((await list.json()) as any).devices.map((d: { id: string }) => d.id),
    ['dev-a', 'dev-b'],
  );
  assert.equal((await api('/v1/devices/dev-a', READ)).status, 200);

  const forbidden = await api('/v1/devices/dev-a', READ, 'DELETE');
  assert.equal(forbidden.status, 403);
  assert.equal(((await forbidden.json()) as any).error.code, 'OTLPEDGE_API_FORBIDDEN');
  assert.equal((await api('/v1/devices/dev-a', READ)).status, 200, 'a refused DELETE changes nothing');
  const deleted = await api('/v1/devices/dev-a', ADMIN, 'DELETE');
  assert.equal(deleted.status, 200);
  assert.deepEqual(await deleted.json(), { id: 'dev-a', deleted: true, nodes: ['agg-test'] });
  assert.equal((await api('/v1/devices/dev-a', ADMIN)).status, 404, 'the device is forgotten');
  assert.equal((await api('/v1/devices/dev-a', ADMIN, 'DELETE')).status, 404);
  assert.equal((await api('/v1/devices/dev-b', READ)).status, 200, 'other devices stay');
  assert.equal(
    (await api('/v1/devices/%E0%A4%A', READ)).status,
    400,
    "a malformed percent-encoding is the caller's error",
  );
  assert.equal((await api('/v1/devices/a%20b', READ)).status, 400, 'an id outside the device-id rule');

  const metrics = await (await api('/metrics', READ)).text();
  assert.match(metrics, /otlp_edge_aggregator_api_requests_refused_total\{status="401"\} 3/);
  assert.match(metrics, /otlp_edge_aggregator_api_requests_refused_total\{status="403"\} 1/);

  // SIGHUP: the read token is revoked, a new one added; the admin stays.
  writeFileSync(file, `${ADMIN} admin ops-alice\nnew-viewer-token-9876543210 read grafana-2\n`);
  agg.child.kill('SIGHUP');
  await waitFor('old read token revoked', async () => (await api('/v1/devices', READ)).status === 401);
  assert.equal((await api('/v1/devices', 'new-viewer-token-9876543210')).status, 200);
  // A broken file on reload keeps the tokens in force.
  writeFileSync(file, 'short read\n');
  agg.child.kill('SIGHUP');
  await waitFor('failed reload audited', () =>
    auditLines(agg.output()).some((l) => l.audit === 'token_reload' && l.outcome === 'failed'),
  );
  assert.equal((await api('/v1/devices', 'new-viewer-token-9876543210')).status, 200);

  const audit = auditLines(agg.output());
  const refused = audit.filter((l) => l.audit === 'refused');
  assert.equal(refused.filter((l) => l.status === 401).length >= 4, true);
  assert.deepEqual(
    refused.filter((l) => l.status === 403).map((l) => [l.token, l.method, l.path]),
    [['grafana', 'DELETE', '/v1/devices/dev-a']],
  );
  const actions = audit.filter((l) => l.audit === 'admin');
  assert.deepEqual(
    actions.map((l) => [l.action, l.device, l.token, l.outcome]),
    [
      ['delete_device', 'dev-a', 'ops-alice', 'deleted'],
      ['delete_device', 'dev-a', 'ops-alice', 'not_found'],
    ],
  );
  assert.ok(audit.some((l) => l.audit === 'token_reload' && l.outcome === 'ok'));
  for (const secret of [READ, ADMIN, 'new-viewer-token-9876543210'])
    assert.ok(!agg.output().includes(secret), 'no token is ever logged');
});
