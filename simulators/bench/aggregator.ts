/**
 * `otlp-edge-sim bench aggregator`: points/s one aggregator node ingests (decode, state, durable commit), fed
 * recorded agent batches over the real uplink gRPC service by several simulated gateways at once, and where the
 * node's time goes (decode vs state+disk, from its own /metrics). Budget: 750,000 points/s; goal 1,000,000.
 */
import { Signal } from '../../protocol/otlp/signal.js';
import * as grpc from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { MetricsEncoder } from '../../protocol/otlp/metrics-encoder.js';
import { ZstdCompressor, Compression } from '../../protocol/compression.js';
import { uplinkServiceDefinition } from '../../protocol/uplink/service.js';
import { AckStatus, type UplinkAck, type UplinkBatch } from '../../protocol/uplink/messages.js';
import { fleetBatch } from './protocol.js';
import { HashRing } from '../../protocol/ring/ring.js';
import type { DeviceReadings } from '../../protocol/payload/types.js';
import { feedStream, frameSources } from './stream-feed.js';
import { sendOtlp } from './otlp-feed.js';
import { freeLoopbackPort, scrapeMetric, waitForHttp } from './util.js';
import { startWatchers } from './watchers.js';

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
  /** Aggregator nodes in a static cluster; default 1. Gateways send each device to its owner, as agents do. */
  nodes: number;
  /**
   * Every device of gateway g belongs to node g mod nodes, so batches need no split and are as large as on one node:
   * what is left of the 3-node cost is running several processes, not the cluster's batching. Default false.
   */
  ownedPerGateway?: boolean;
  /** Gateways send as agents do, frames of a few batches on uplink streams (default), or one batch per Send. */
  stream?: boolean;
  /** Seconds fed before the measured window; default 3. */
  warmupSeconds: number;
  /** Gateways send the same batches as standard OTLP instead of the uplink (one node). Default: the uplink. */
  otlp?: 'grpc' | 'http';
  /** The node exports everything to a local OTLP/HTTP sink (in this process) through its durable queue. */
  exportSink?: boolean;
  /**
   * Gateways send with tokens that put them in tenants (two, alternating), and the node runs a typical processor
   * chain — attributes (insert on the Resource), redaction, quotas (limits it never reaches), sampling: the cost of
   * processors and tenants on the data path. Default false.
   */
  tenants?: boolean;
  /** Live-stream clients watching every device's readings: `reading` read all they get, `stalled` read nothing. */
  watchers?: { reading: number; stalled: number };
  /**
   * Distinct batches recorded per gateway before the clock starts; default 400, enough that a 10 s window at a
   * million points/s replays none. A short run needs fewer (recording takes seconds); replays are reported.
   */
  recorded?: number;
}

const RECORDED_PER_GATEWAY = 400;

type Stub = grpc.Client & {
  Send(
    req: UplinkBatch,
    md: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: UplinkAck) => void,
  ): void;
};

export interface IngestFigures {
  pointsPerSecond: number;
  appliedPerSecond: number;
  cpuSecondsPerMillion: number;
  decodeShare: number;
  applyMsPerBatch: number;
  forwardedShare: number;
  batches: number;
  /** Batches in the window that repeated a recorded one (their readings are duplicates, cheaper than new ones). */
  replayed: number;
  /** Points the node's exporter delivered to the sink per second in the window (0 without exportSink). */
  exportedPerSecond: number;
  /** Stream messages the reading watchers got per second, and messages dropped per second for the stalled ones. */
  streamedPerSecond: number;
  droppedPerSecond: number;
  /** Resident memory of the node processes at the end of the window (summed over nodes). */
  rssBytes: number;
}

/** Runs `nodes` aggregator processes, feeds them for `seconds` and reads their figures. */
export async function measureIngest(opts: AggregatorBenchOptions): Promise<IngestFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'otlp-edge-bench-agg-'));
  const ports = await Promise.all(
    Array.from({ length: opts.nodes }, async () => ({
      grpc: await freeLoopbackPort(),
      api: await freeLoopbackPort(),
      otlp: await freeLoopbackPort(),
    })),
  );
  // A local backend for the exporter in its own process (answers 200 to every request), as a real one would be.
  const sinkPort = opts.exportSink ? await freeLoopbackPort() : 0;
  const sink = opts.exportSink
    ? spawn(
        process.execPath,
        [
          '-e',
          `require('http').createServer((q, s) => { q.resume(); q.on('end', () => s.end()); }).listen(${sinkPort}, '127.0.0.1')`,
        ],
        { stdio: 'ignore' },
      )
    : null;
  const members = ports.map((p, i) => ({ id: `bench-${i}`, address: `127.0.0.1:${p.grpc}` }));
  // Peer calls are signed as in production, so the signing is part of what the cluster costs.
  const secretFile = join(dir, 'cluster.secret');
  writeFileSync(secretFile, randomBytes(32).toString('hex'));
  const tokenOf = (g: number) => `bench-token-${g}-${'x'.repeat(16)}`;
  const tokensFile = join(dir, 'agents.tokens');
  if (opts.tenants)
    writeFileSync(
      tokensFile,
      Array.from({ length: opts.gateways }, (_, g) => `bench-gw-${g} ${tokenOf(g)} tenant-${g % 2}\n`).join(''),
    );
  const metadata = (g: number) => {
    const md = new grpc.Metadata();
    if (opts.tenants) md.set('authorization', `Bearer ${tokenOf(g)}`);
    return md;
  };
  const children = ports.map((p, i) => {
    writeFileSync(
      join(dir, `aggregator-${i}.yaml`),
      stringify({
        node: { id: members[i].id, data_dir: join(dir, `data-${i}`) },
        grpc: { host: '127.0.0.1', port: p.grpc },
        otlp_http: opts.otlp === 'http' ? { host: '127.0.0.1', port: p.otlp } : { enabled: false },
        api: { host: '127.0.0.1', port: p.api },
        export: sink ? { endpoint: `http://127.0.0.1:${sinkPort}`, compression: 'zstd' } : [],
        log: { level: 'warn' },
        ...(opts.tenants
          ? {
              auth: { agent_tokens_file: tokensFile },
              processors: [
                {
                  attributes: { actions: [{ key: 'datacenter', value: 'dc-1', action: 'insert', scope: 'resource' }] },
                },
                { redaction: { detectors: ['email', 'ip'] } },
                { quotas: { default: { devices: 10_000_000, points_per_second: 1_000_000_000 } } },
                { sampling: { logs_per_second: 1000 } },
              ],
            }
          : {}),
        cluster:
          opts.nodes > 1
            ? { members: members.map((m) => `${m.id}=${m.address}`), probe_interval: '500ms', secret_file: secretFile }
            : {},
      }),
    );
    return spawn(process.execPath, [...opts.nodeArgs, aggregatorMain, '--config', join(dir, `aggregator-${i}.yaml`)], {
      stdio: 'inherit',
    });
  });
  try {
    await Promise.all(ports.map((p) => waitForHttp(`http://127.0.0.1:${p.api}/readyz`)));
    if (sink) await waitForHttp(`http://127.0.0.1:${sinkPort}/`);
    // The same ring the nodes build from the same members: each gateway splits its batches by owner, as a
    // ring-aware agent does, so a cluster should need no forwarding.
    const ring = new HashRing(members);
    const enc = new MetricsEncoder({ gatewayId: 'bench' });
    const zstd = new ZstdCompressor(3);
    const Client = grpc.makeGenericClientConstructor(
      uplinkServiceDefinition as unknown as grpc.ServiceDefinition,
      'Uplink',
    );
    // Every gateway's batches are recorded before the clock starts. Enough distinct batches that the measured window
    // never replays one: a replay would carry seqs the node has seen, and duplicate readings cost less than new ones.
    const recorded = Array.from({ length: opts.gateways }, (_, g) => {
      const out: { address: string; payload: Uint8Array; otlp: Uint8Array; points: number }[] = [];
      // With ownedPerGateway, ids are drawn until `devices` of them belong to this gateway's node.
      const home = opts.ownedPerGateway ? members[g % opts.nodes] : null;
      for (let i = 0; i < (opts.recorded ?? RECORDED_PER_GATEWAY); i++) {
        const byOwner = new Map<string, DeviceReadings[]>();
        let kept = 0;
        for (const d of fleetBatch(
          home === null ? opts.devices : opts.devices * opts.nodes * 2,
          1,
          1732280000000 + i * 1000,
          i,
        ).batch) {
          d.deviceId = `g${g}-${d.deviceId}`;
          const owner = ring.owner(d.deviceId);
          if (home !== null && (kept >= opts.devices || owner.id !== home.id)) continue;
          kept++;
          const a = owner.address;
          const part = byOwner.get(a);
          if (part) part.push(d);
          else byOwner.set(a, [d]);
        }
        for (const [address, part] of byOwner) {
          const otlp = enc.encode(part);
          out.push({ address, payload: opts.stream ? otlp : zstd.compress(otlp), otlp, points: part.length * 6 });
        }
      }
      return out;
    });
    const metricsUrls = ports.map((p) => `http://127.0.0.1:${p.api}/metrics`);
    // Counted only inside the window; the warm-up before it lets every node's JIT and heap settle.
    let counting = false;
    let sent = 0;
    let points = 0;
    let replayed = 0;
    let stop = false;
    // Streams: each gateway's batches as frames of two (about 12,000 points, as an agent's backlog goes out).
    const streamed = opts.stream ? recorded.map((batches) => frameSources(batches, 2)) : null;
    const feeding = Promise.all(
      recorded.map(async (batches, g) => {
        if (streamed !== null) {
          const clients = [...streamed[g]].map(([address, frames]) => ({
            client: new Client(address, grpc.credentials.createInsecure()) as unknown as Parameters<
              typeof feedStream
            >[0],
            frames,
          }));
          try {
            await Promise.all(
              clients.map(({ client, frames }) =>
                feedStream(
                  client,
                  metadata(g),
                  `bench-gw-${g}`,
                  g + 1,
                  frames,
                  opts.inFlight,
                  () => stop,
                  (f) => {
                    if (!counting) return;
                    sent += f.segments;
                    points += f.points;
                  },
                ),
              ),
            );
          } finally {
            for (const c of clients) c.client.close();
          }
          return;
        }
        const clients = new Map(
          members.map((m) => [m.address, new Client(m.address, grpc.credentials.createInsecure()) as unknown as Stub]),
        );
        let seq = 0;
        const otlpClient =
          opts.otlp === 'grpc' ? new grpc.Client(members[0].address, grpc.credentials.createInsecure()) : null;
        const lane = async () => {
          while (!stop) {
            const r = batches[seq % batches.length];
            seq++;
            if (opts.otlp !== undefined) {
              await sendOtlp(opts.otlp, otlpClient, ports[0].otlp, r);
              if (!counting) continue;
              if (seq > batches.length) replayed++;
              sent++;
              points += r.points;
              continue;
            }
            const ack = await new Promise<UplinkAck>((resolve, reject) =>
              clients.get(r.address)!.Send(
                {
                  agentId: `bench-gw-${g}`,
                  seq,
                  signal: Signal.METRICS,
                  compression: Compression.ZSTD,
                  payload: r.payload,
                  points: r.points,
                  ringVersion: 0,
                },
                metadata(g),
                { deadline: Date.now() + 30_000 },
                (err, res) => (err ? reject(err) : resolve(res!)),
              ),
            );
            if (ack.status !== AckStatus.OK)
              throw new Error(`aggregator answered ${AckStatus[ack.status]}: ${ack.reason}`);
            if (!counting) continue;
            if (seq > batches.length) replayed++;
            sent++;
            points += r.points;
          }
        };
        try {
          await Promise.all(Array.from({ length: opts.inFlight }, lane));
        } finally {
          for (const c of clients.values()) c.close();
          otlpClient?.close();
        }
      }),
    );
    feeding.catch(() => undefined); // awaited below; a failure ends the wait early
    await Promise.race([new Promise((r) => setTimeout(r, opts.warmupSeconds * 1000)), feeding]);
    const w = opts.watchers;
    const watchers = w ? await startWatchers(ports[0].api, w.reading, w.stalled) : null;
    const before = await Promise.all(metricsUrls.map(scrapeMetrics));
    counting = true;
    watchers?.start();
    const t0 = performance.now();
    await Promise.race([new Promise((r) => setTimeout(r, opts.seconds * 1000)), feeding]);
    counting = false;
    const seconds = (performance.now() - t0) / 1000;
    const watchedMessages = (await watchers?.stop()) ?? 0;
    const after = await Promise.all(metricsUrls.map(scrapeMetrics));
    stop = true;
    await feeding;
    const d = (name: string) =>
      after.reduce((n, text, i) => n + scrapeMetric(text, name) - scrapeMetric(before[i], name), 0);
    const cpu = d('otlp_edge_aggregator_process_cpu_seconds_total');
    return {
      pointsPerSecond: points / seconds,
      appliedPerSecond: d('otlp_edge_aggregator_points_ingested_total') / seconds,
      cpuSecondsPerMillion: (cpu / Math.max(1, points)) * 1e6,
      decodeShare: d('otlp_edge_aggregator_decode_seconds_total') / Math.max(cpu, 1e-9),
      applyMsPerBatch: (1000 * d('otlp_edge_aggregator_apply_seconds_total')) / Math.max(1, sent),
      forwardedShare: d('otlp_edge_aggregator_forwarded_points_total') / Math.max(1, points),
      batches: sent,
      replayed,
      exportedPerSecond: d('otlp_edge_aggregator_export_sent_points_total') / seconds,
      streamedPerSecond: watchedMessages / seconds,
      droppedPerSecond: d('otlp_edge_aggregator_stream_dropped_messages_total') / seconds,
      rssBytes: after.reduce(
        (n, text) => n + scrapeMetric(text, 'otlp_edge_aggregator_process_resident_memory_bytes'),
        0,
      ),
    };
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))));
    sink?.kill('SIGKILL'); // after the nodes: an exporter cut off mid-request would log it
    rmSync(dir, { recursive: true, force: true });
  }
}

export const defaults = (o: Partial<AggregatorBenchOptions>): AggregatorBenchOptions => ({
  gateways: 4,
  inFlight: 4,
  seconds: 10,
  warmupSeconds: 3,
  devices: 1000,
  nodeArgs: [],
  nodes: 1,
  stream: true,
  ...o,
});

async function scrapeMetrics(url: string): Promise<string> {
  // Once more on a failure: a kept-alive connection the node closed meanwhile fails the first try.
  return (await fetch(url).catch(() => fetch(url))).text();
}
