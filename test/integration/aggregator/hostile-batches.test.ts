import { Compression } from '../../../protocol/compression.js';
import { Signal } from '../../../protocol/otlp/signal.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { metricValue } from '../../helpers/agent-process.js';
import { startAggregator, type AggregatorProcess } from '../../helpers/aggregator-process.js';
import { tempDir } from '../../helpers/tmp.js';
import { metricsPayload, sendBatch } from '../../helpers/uplink-client.js';
import { deepLogsRequest, tinyLogsRequest } from '../../helpers/otlp-bytes.js';
import { AckStatus } from '../../../protocol/uplink/messages.js';

async function rss(agg: AggregatorProcess): Promise<number> {
  return metricValue(
    await (await fetch(`http://127.0.0.1:${agg.apiPort}/metrics`)).text(),
    'otlp_edge_aggregator_process_resident_memory_bytes',
  );
}

const MiB = 1024 * 1024;

test('a gzip bomb and a logs bomb are refused or walked with bounded memory; deep nesting is answered, not an error', async (t) => {
  const dir = tempDir(t);
  const agg = await startAggregator(dir);
  t.after(() => agg.kill9());
  const at = `127.0.0.1:${agg.grpcPort}`;
  const before = await rss(agg);

  // 16 MiB of tiny log records gzip to a few KB: a ratio no telemetry has.
  const bomb = gzipSync(tinyLogsRequest('bomb-dev', (16 * MiB) / 7));
  assert.ok(bomb.length < 200 * 1024, `bomb is ${bomb.length} bytes`);
  const r1 = await sendBatch(at, {
    agentId: 'gw-x',
    seq: 1,
    signal: Signal.LOGS,
    compression: Compression.GZIP,
    payload: bomb,
    points: 1,
  });
  assert.equal(r1.ack?.status, AckStatus.REJECTED);
  assert.match(r1.ack!.reason, /OTLPEDGE_PROTO_BAD_COMPRESSION: .*inflated within/);
  const zeros = gzipSync(Buffer.alloc(64 * MiB));
  const r2 = await sendBatch(at, { agentId: 'gw-x', seq: 2, compression: Compression.GZIP, payload: zeros, points: 1 });
  assert.equal(r2.ack?.status, AckStatus.REJECTED);

  // 12 MiB of 1.8 M log records, uncompressed: within the limits, so it is walked — by resource, without a tree.
  const flood = tinyLogsRequest('flood-dev', Math.floor((12 * MiB) / 7));
  const r3 = await sendBatch(at, { agentId: 'gw-x', seq: 3, signal: Signal.LOGS, payload: flood, points: 1 });
  assert.equal(r3.ack?.status, AckStatus.OK, r3.err?.message);
  assert.equal((await agg.get('/v1/devices/flood-dev')).status, 200);

  // A body nested 20,000 deep (a RangeError in a recursive decoder) gets an answer, never a gRPC UNKNOWN.
  const r4 = await sendBatch(at, {
    agentId: 'gw-x',
    seq: 4,
    signal: Signal.LOGS,
    payload: deepLogsRequest('deep-dev', 20_000),
    points: 1,
  });
  assert.equal(r4.err, undefined, r4.err?.message);
  assert.ok(r4.ack!.status === AckStatus.OK || r4.ack!.status === AckStatus.REJECTED);

  const grown = (await rss(agg)) - before;
  assert.ok(grown < 150 * MiB, `RSS grew by ${(grown / MiB).toFixed(0)} MiB`);
  // The node still serves ordinary batches.
  const ok = await sendBatch(at, {
    agentId: 'gw-x',
    seq: 5,
    payload: metricsPayload(['after-dev'], { t: 1 }),
    points: 2,
  });
  assert.equal(ok.ack?.status, AckStatus.OK);
});

test("device ids and metric names outside the agent's rules are REJECTED with the reason", async (t) => {
  const dir = tempDir(t);
  const agg = await startAggregator(dir);
  t.after(() => agg.kill9());
  const at = `127.0.0.1:${agg.grpcPort}`;
  const longName = metricsPayload(['dev-ok'], { ['n'.repeat(70_000)]: 1 });
  const r1 = await sendBatch(at, { agentId: 'gw-y', seq: 1, payload: longName, points: 2 });
  assert.equal(r1.ack?.status, AckStatus.REJECTED);
  assert.match(r1.ack!.reason, /OTLPEDGE_PROTO_BAD_FIELD: metric name .*70000 characters/);
  const badId = metricsPayload(['dev with spaces'], { t: 1 });
  const r2 = await sendBatch(at, { agentId: 'gw-y', seq: 2, payload: badId, points: 2 });
  assert.equal(r2.ack?.status, AckStatus.REJECTED);
  assert.match(r2.ack!.reason, /device\.id "dev with spaces" is not a device id/);
  assert.equal((await agg.get('/v1/devices/dev-ok')).status, 404);
});

test('an oversized gRPC message is refused before any token check or decode', async (t) => {
  const dir = tempDir(t);
  const tokens = join(dir, 'agents.tokens');
  writeFileSync(tokens, 'gw-1 token-of-gateway-1\n');
  const agg = await startAggregator(dir, { auth: { agent_tokens_file: tokens } });
  t.after(() => agg.kill9());
  const before = await rss(agg);
  const big = Buffer.alloc(40 * MiB, 1);
  const anon = await sendBatch(`127.0.0.1:${agg.grpcPort}`, { agentId: 'gw-1', seq: 1, payload: big, points: 1 });
  assert.equal(anon.err?.code, grpc.status.UNAUTHENTICATED, 'no token: refused from the metadata');
  const withToken = await sendBatch(
    `127.0.0.1:${agg.grpcPort}`,
    { agentId: 'gw-1', seq: 1, payload: big, points: 1 },
    'token-of-gateway-1',
  );
  assert.equal(withToken.err?.code, grpc.status.RESOURCE_EXHAUSTED, 'over the 16 MiB message limit');
  const grown = (await rss(agg)) - before;
  assert.ok(grown < 60 * MiB, `RSS grew by ${(grown / MiB).toFixed(0)} MiB`);
});
