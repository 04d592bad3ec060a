import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../../helpers/agent-process.js';
import { tempDir } from '../../helpers/tmp.js';

test('npm start (otlp-edge-sim demo) runs aggregator, agent and devices end to end and stops cleanly', async (t) => {
  const dir = tempDir(t);
  const child = spawn(
    process.execPath,
    [join(repoRoot, 'dist', 'simulators', 'main.js'), 'demo', '--devices', '12', '--duration', '5', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (out += d));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  assert.equal(code, 0, out);
  assert.match(out, /WARNING: the demo agent accepts devices WITHOUT credentials/);
  const api = /API (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
  assert.ok(api, 'prints where the API is');
  assert.match(out, /Query the aggregator: http:\/\/127\.0\.0\.1:\d+\/v1\/devices/);
  assert.match(out, /Open the fleet page: +http:\/\/127\.0\.0\.1:\d+\//);
  const online = [...out.matchAll(/devices online (\d+)/g)].map((m) => Number(m[1]));
  assert.ok(online.includes(12), `all 12 devices came online at the aggregator (saw ${online.join(', ')})`);
  const sent = /devices sent (\d+) readings, (\d+) acknowledged/.exec(out)!;
  assert.ok(Number(sent[1]) > 12 && sent[1] === sent[2], out);
  assert.match(out, /stopped\. Data kept in/);
});
