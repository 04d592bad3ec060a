import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsEncoder } from '../../../../protocol/otlp/metrics-encoder.js';
import { decodeLogsRequest, decodeMetricsRequest } from '../../../../protocol/otlp/decode.js';
import { ProtoError } from '../../../../protocol/errors.js';

import { mulberry32 as rng } from '../../../helpers/random.js';

test('the OTLP decoders answer corrupt input only with ProtoError, never another exception or a hang', () => {
  const seed = 20261122;
  const rand = rng(seed);
  const enc = new MetricsEncoder({ gatewayId: 'gw', attributes: { site: 'x' } });
  const valid = enc.encode([
    {
      deviceId: 'dev-1',
      readings: [{ ts: 1e12, seq: 3, names: ['a', 'b'], values: [1, 2.5], attributes: ['k', 'v'] }],
    },
  ]);
  let rejected = 0;
  for (let i = 0; i < 5000; i++) {
    const input = Uint8Array.from(valid);
    const mode = i % 3;
    if (mode === 0)
      for (let k = 0; k < 1 + (i % 5); k++) input[Math.floor(rand() * input.length)] = Math.floor(rand() * 256);
    const bytes =
      mode === 1
        ? input.subarray(0, Math.floor(rand() * input.length))
        : mode === 2
          ? Uint8Array.from({ length: 1 + Math.floor(rand() * 64) }, () => Math.floor(rand() * 256))
          : input;
    for (const decode of [decodeMetricsRequest, decodeLogsRequest]) {
      try {
        decode(bytes);
      } catch (e) {
        assert.ok(e instanceof ProtoError, `seed ${seed} case ${i}: ${String(e)}`);
        rejected++;
      }
    }
  }
  assert.ok(rejected > 1000, `most corrupt inputs are rejected (${rejected})`);
});

test('an AnyValue nested deeper than 64 levels is refused as TOO_DEEP, not a stack overflow', async () => {
  const { deepLogsRequest } = await import('../../../helpers/otlp-bytes.js');
  const { decodeLogsRequest } = await import('../../../../protocol/otlp/decode.js');
  assert.throws(
    () => decodeLogsRequest(deepLogsRequest('d', 50_000)),
    (e: Error & { code?: string }) => e.code === 'OTLPEDGE_PROTO_TOO_DEEP',
  );
  const ok = decodeLogsRequest(deepLogsRequest('d', 60));
  assert.equal(ok.resourceLogs.length, 1);
});
