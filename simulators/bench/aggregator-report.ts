import { newReport, type BenchReport } from './report.js';
import { defaults, measureIngest, type AggregatorBenchOptions } from './aggregator.js';
import { measurePrometheus } from './prometheus-peer.js';

/**
 * `otlp-edge-sim bench aggregator`: the rows of its report, each figure beside its baseline from the same run —
 * uplink ingest, standard OTLP ingest, export, and what live-stream clients cost (the harness is aggregator.ts).
 */

export async function benchAggregator(
  o: Partial<AggregatorBenchOptions> & { skipOtlp?: boolean } = {},
): Promise<BenchReport> {
  const opts = defaults(o);
  const report = newReport('aggregator');
  const f = await measureIngest(opts);
  report.rows.push({
    name: 'aggregator ingest per node',
    value: f.pointsPerSecond / opts.nodes,
    unit: 'points/s',
    budget: { op: '>=', bound: 750_000 },
    goal: { op: '>=', bound: 1_000_000 },
    note: `${opts.gateways} gateways x ${opts.inFlight} in flight, ${f.batches} batches${opts.stream ? ' in stream frames' : ' one per Send'}`,
  });
  report.rows.push({
    name: 'points applied to state (node metric)',
    value: f.appliedPerSecond,
    unit: 'points/s',
    note: "a reading's seq is a point on the wire, not in state (1 of 6 here)",
  });
  report.rows.push({ name: 'node CPU per 1M points', value: f.cpuSecondsPerMillion, unit: 'CPU s' });
  report.rows.push({ name: 'CPU split: decode (inflate + walk)', value: 100 * f.decodeShare, unit: '% of node CPU' });
  report.rows.push({
    name: 'CPU split: state, gRPC and disk',
    value: 100 * (1 - f.decodeShare),
    unit: '% of node CPU',
  });
  report.rows.push({
    name: 'apply latency (decoded → durable), mean',
    value: f.applyMsPerBatch,
    unit: 'ms',
    note: 'includes waiting for the group fsync',
  });
  if (opts.nodes === 1 && !o.skipOtlp) {
    // The same batches as standard OTLP, and the uplink again with export on, one node each, in the same run.
    const send = await measureIngest({ ...opts, stream: false });
    for (const how of ['grpc', 'http'] as const) {
      const g = await measureIngest({ ...opts, stream: false, otlp: how });
      report.rows.push({
        name: `OTLP/${how === 'grpc' ? 'gRPC (gzip)' : 'HTTP (protobuf + zstd)'} ingest per node`,
        value: g.pointsPerSecond,
        unit: 'points/s',
        baseline: { name: 'uplink Send, same batches', value: send.pointsPerSecond },
        budget: { op: '>=', bound: 0.8, ratio: true },
        note: `CPU ${g.cpuSecondsPerMillion.toFixed(2)} s/1M points vs ${send.cpuSecondsPerMillion.toFixed(2)}`,
      });
    }
    const x = await measureIngest({ ...opts, exportSink: true });
    report.rows.push({
      name: 'export (OTLP/HTTP + zstd to a local sink), delivered',
      value: x.exportedPerSecond,
      unit: 'points/s',
      baseline: { name: 'ingested meanwhile', value: x.pointsPerSecond },
      note: 'the sink keeps up when delivered ≈ ingested',
    });
    report.rows.push({
      name: 'node CPU per point with export, streams',
      value: x.cpuSecondsPerMillion,
      unit: 'CPU s/1M points',
      baseline: { name: 'without export', value: f.cpuSecondsPerMillion },
      budget: { op: '<=', bound: 1.2, ratio: true, note: 'export adds at most 20 %' },
      note: "OTLP rebuilt from the frames' columns, compressed, queued in the same commit, sent",
    });
    const stalled = await measureIngest({ ...opts, watchers: { reading: 0, stalled: 1 } });
    report.rows.push({
      name: 'ingest per node with a stalled live-stream client on every reading',
      value: stalled.pointsPerSecond,
      unit: 'points/s',
      baseline: { name: 'no stream clients', value: f.pointsPerSecond },
      budget: { op: '>=', bound: 0.9, ratio: true, note: 'a slow client never slows ingest' },
      note: `${Math.round(stalled.droppedPerSecond).toLocaleString('en-US')} messages/s dropped for it, counted and announced`,
    });
    const reading = await measureIngest({ ...opts, watchers: { reading: 2, stalled: 0 } });
    report.rows.push({
      name: 'node CPU per point with 2 live-stream clients reading every reading',
      value: reading.cpuSecondsPerMillion,
      unit: 'CPU s/1M points',
      baseline: { name: 'no stream clients', value: f.cpuSecondsPerMillion },
      note: `${Math.round(reading.streamedPerSecond).toLocaleString('en-US')} messages/s delivered (clients in their own process, on the same 2 cores), ${Math.round(reading.droppedPerSecond).toLocaleString('en-US')}/s dropped; ingest ${Math.round(reading.pointsPerSecond).toLocaleString('en-US')} points/s`,
    });
    const tenants = await measureIngest({ ...opts, tenants: true });
    report.rows.push({
      name: 'aggregator ingest with processors (attributes, redaction, quotas, sampling) and tenants',
      value: tenants.pointsPerSecond,
      unit: 'points/s',
      baseline: { name: 'no tokens, no processors', value: f.pointsPerSecond },
      budget: { op: '>=', bound: 0.85, ratio: true, note: 'a processor chain costs at most 15 %' },
      note: `2 tenants, tenant.id stamped; stream columns carry no point attributes, so attributes and redaction act on Resources; CPU ${tenants.cpuSecondsPerMillion.toFixed(2)} s/1M points vs ${f.cpuSecondsPerMillion.toFixed(2)}`,
    });
    // The peer a user would pick instead: Prometheus taking the same points by remote write, in the same run.
    const peer = await measurePrometheus({
      gateways: opts.gateways,
      devices: opts.devices,
      seconds: opts.seconds,
      warmupSeconds: opts.warmupSeconds,
      recorded: opts.recorded ?? 400,
    });
    if (peer !== null) {
      report.rows.push({
        name: 'aggregator ingest per node vs Prometheus remote write of the same points',
        value: f.pointsPerSecond,
        unit: 'points/s',
        baseline: { name: 'Prometheus samples/s', value: peer.samplesPerSecond },
        note: `Debian prometheus --web.enable-remote-write-receiver, ${opts.gateways} writers one request at a time, ${peer.refused} requests refused`,
      });
      report.rows.push({
        name: 'resident memory while ingesting, aggregator node vs Prometheus',
        value: f.rssBytes / 1048576,
        unit: 'MiB',
        baseline: { name: 'Prometheus', value: peer.rssBytes / 1048576 },
      });
    }
    const xs = await measureIngest({ ...opts, stream: false, exportSink: true });
    report.rows.push({
      name: 'node CPU per point with export, Send',
      value: xs.cpuSecondsPerMillion,
      unit: 'CPU s/1M points',
      baseline: { name: 'without export', value: send.cpuSecondsPerMillion },
      budget: { op: '<=', bound: 1.2, ratio: true, note: 'export adds at most 20 %' },
      note: `the agent's zstd batch queued as received; delivered ${Math.round(xs.exportedPerSecond)} of ${Math.round(xs.pointsPerSecond)} points/s`,
    });
  }
  return report;
}
