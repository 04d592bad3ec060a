import { test } from 'node:test';
import assert from 'node:assert/strict';
import { measurePrometheus, prometheusPath } from '../../../simulators/bench/prometheus-peer.js';

// Correctness only: the peer of `bench aggregator` (a real Prometheus) takes every remote-write request it is sent.
test(
  'the Prometheus peer takes the bench points by remote write: samples/s and RSS measured, no request refused',
  { timeout: 120_000 },
  async () => {
    assert.ok(prometheusPath() !== null, 'prometheus is installed (.ci/run installs it)');
    const f = await measurePrometheus({ gateways: 2, devices: 50, seconds: 2, warmupSeconds: 0, recorded: 60 });
    assert.ok(f !== null);
    assert.equal(f.refused, 0, 'every request accepted (series in time order, valid snappy protobuf)');
    assert.ok(Number.isFinite(f.samplesPerSecond) && f.samplesPerSecond > 0, String(f.samplesPerSecond));
    assert.ok(f.rssBytes > 0);
  },
);
