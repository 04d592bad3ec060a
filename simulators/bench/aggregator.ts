/**
 * `otlp-edge-sim bench aggregator`: points/s one aggregator node ingests (decode, state, durable commit), fed
 * recorded agent batches over the real uplink gRPC service by several simulated gateways at once, and where the
 * node's time goes (decode vs state+disk, from its own /metrics). Budget: 250,000 points/s; goal 1,000,000.
 */
import * as grpc from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { MetricsEncoder } from '../../protocol/otlp/metrics-encoder.js';
import { ZstdCompressor } from '../../protocol/compression.js';
import { uplinkServiceDefinition } from '../../protocol/uplink/service.js';
import { AckStatus, UplinkCompression, UplinkSignal, type UplinkAck, type UplinkBatch } from '../../protocol/uplink/messages.js';
import { fleetBatch } from './protocol.js';
import { newReport, type BenchReport } from './report.js';
import { freeLoopbackPort, scrapeMetric, waitForHttp } from './util.js';

const aggregatorMain = fileURLToPath(new URL('../../aggregator/main.js', import.meta.url));

export interface AggregatorBenchOptions {
  /** Simulated gateways sending at once; default 4. */
  gateways: number;
  /** Batches each gateway keeps in flight; default 4 (the agent's default). */
  inFlight: number;
  /** Seconds to measure; default 10. */
  seconds: number;
  /** Devices per gateway; default 1,000. */
  devices: number;
  /** Extra node flags for the aggregator process, e.g. ['--cpu-prof'] to profile it; default none. */
  nodeArgs: string[];
}

const RECORDED_PER_GATEWAY = 120;

type Stub = grpc.Client & { Send(req: UplinkBatch, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: UplinkAck) => void): void };

export async function benchAggregator(o: Partial<AggregatorBenchOptions> = {}): Promise<BenchReport> {
  const opts: AggregatorBenchOptions = { gateways: 4, inFlight: 4, seconds: 10, devices: 1000, nodeArgs: [], ...o };
  const report = newReport('aggregator');
  const dir = mkdtempSync(join(tmpdir(), 'otlp-edge-bench-agg-'));
  const grpcPort = await freeLoopbackPort();
  const apiPort = await freeLoopbackPort();
  writeFileSync(join(dir, 'aggregator.yaml'), stringify({
    node: { id: 'bench', data_dir: join(dir, 'data') }, grpc: { host: '127.0.0.1', port: grpcPort }, otlp_http: { port: 0 },
    api: { host: '127.0.0.1', port: apiPort }, log: { level: 'warn' },
  }));
  const child = spawn(process.execPath, [...opts.nodeArgs, aggregatorMain, '--config', join(dir, 'aggregator.yaml')], { stdio: 'inherit' });
  try {
    await waitForHttp(`http://127.0.0.1:${apiPort}/readyz`);
    // Recorded batches: each gateway replays batches of its own devices (1,000 devices × 1 reading of 5 metrics
    // + seq), timestamps advancing a second per batch, as a live fleet would produce them.
    const enc = new MetricsEncoder({ gatewayId: 'bench' });
    const zstd = new ZstdCompressor(3);
    const Client = grpc.makeGenericClientConstructor(uplinkServiceDefinition as unknown as grpc.ServiceDefinition, 'Uplink');
    let sent = 0;
    let points = 0;
    const deadline = Date.now() + opts.seconds * 1000;
    const metricsUrl = `http://127.0.0.1:${apiPort}/metrics`;
    const before = await scrapeMetrics(metricsUrl);
    const t0 = performance.now();
    await Promise.all(Array.from({ length: opts.gateways }, async (_, g) => {
      const client = new Client(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure()) as unknown as Stub;
      // Enough distinct batches that the measured window never replays one: a replay would carry seqs the node has
      // seen, and duplicate readings cost less than new ones.
      const recorded = Array.from({ length: RECORDED_PER_GATEWAY }, (_, i) => {
        const { batch, points: n } = fleetBatch(opts.devices, 1, 1732280000000 + i * 1000, i);
        for (const d of batch) d.deviceId = `g${g}-${d.deviceId}`;
        return { payload: zstd.compress(enc.encode(batch)), points: n };
      });
      let seq = 0;
      const lane = async () => {
        while (Date.now() < deadline) {
          const r = recorded[seq % recorded.length];
          seq++;
          // Replayed recordings reuse timestamps; seq numbers stay unique so nothing is deduplicated as a retry.
          const ack = await new Promise<UplinkAck>((resolve, reject) => client.Send({
            agentId: `bench-gw-${g}`, seq, signal: UplinkSignal.METRICS, compression: UplinkCompression.ZSTD, payload: r.payload, points: r.points, ringVersion: 0,
          }, new grpc.Metadata(), { deadline: Date.now() + 30_000 }, (err, res) => (err ? reject(err) : resolve(res!))));
          if (ack.status !== AckStatus.OK) throw new Error(`aggregator answered ${AckStatus[ack.status]}: ${ack.reason}`);
          sent++;
          points += r.points;
        }
      };
      await Promise.all(Array.from({ length: opts.inFlight }, lane));
      client.close();
    }));
    const seconds = (performance.now() - t0) / 1000;
    const after = await scrapeMetrics(metricsUrl);
    const d = (name: string) => scrapeMetric(after, name) - scrapeMetric(before, name);
    const cpu = d('otlp_edge_aggregator_process_cpu_seconds_total');
    const ingested = d('otlp_edge_aggregator_points_ingested_total');
    const decode = d('otlp_edge_aggregator_decode_seconds_total');
    report.rows.push({ name: 'aggregator ingest per node', value: points / seconds, unit: 'points/s', budget: '>= 250,000 (goal 1,000,000)', note: `${opts.gateways} gateways x ${opts.inFlight} in flight, ${sent} batches` });
    report.rows.push({ name: 'points applied to state (node metric)', value: ingested / seconds, unit: 'points/s', note: 'lower if the window replayed batches' });
    report.rows.push({ name: 'node CPU per 1M points', value: (cpu / Math.max(1, points)) * 1e6, unit: 'CPU s' });
    report.rows.push({ name: 'CPU split: decode (inflate + walk)', value: (100 * decode) / Math.max(cpu, 1e-9), unit: '% of node CPU' });
    report.rows.push({ name: 'CPU split: state, gRPC and disk', value: (100 * (cpu - decode)) / Math.max(cpu, 1e-9), unit: '% of node CPU' });
    report.rows.push({ name: 'apply latency (decoded → durable), mean', value: (1000 * d('otlp_edge_aggregator_apply_seconds_total')) / Math.max(1, sent), unit: 'ms', note: 'includes waiting for the group fsync' });
    return report;
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function scrapeMetrics(url: string): Promise<string> {
  return (await fetch(url)).text();
}
