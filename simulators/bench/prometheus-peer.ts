/**
 * The peer beside `bench aggregator`: a real Prometheus (Debian's package, when installed) with its remote-write
 * receiver, ingesting the same points by remote write — what a user would pick to "keep the latest values of my
 * devices". The gateways' batches (the same fleet readings, device ids and metric names as the aggregator gets) are
 * turned into remote-write requests before the clock starts, exactly as the aggregator's own remote-write exporter
 * builds them (target_info off: samples only), snappy-compressed; then each gateway posts them one after another (a
 * series' samples must arrive in time order) for the measured window.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import snappy from 'snappy';
import { MetricsEncoder } from '../../protocol/otlp/metrics-encoder.js';
import { decodeMetricsRequest } from '../../protocol/otlp/decode.js';
import { WriteRequestBuilder } from '../../protocol/prometheus/remote-write.js';
import { fleetBatch } from './protocol.js';
import { rssOf } from './processes.js';
import { freeLoopbackPort, waitForHttp } from './util.js';

export interface PeerFigures {
  samplesPerSecond: number;
  /** Resident memory of the Prometheus process at the end of the window. */
  rssBytes: number;
  /** Requests Prometheus refused (non-2xx) in the window. */
  refused: number;
}

/** The path of `prometheus`, or null when it is not installed. */
export function prometheusPath(): string | null {
  const r = spawnSync('sh', ['-c', 'command -v prometheus'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : null;
}

export async function measurePrometheus(opts: {
  gateways: number;
  devices: number;
  seconds: number;
  warmupSeconds: number;
  recorded: number;
}): Promise<PeerFigures | null> {
  const bin = prometheusPath();
  if (bin === null) return null;
  const dir = mkdtempSync(join(tmpdir(), 'otlp-edge-bench-prometheus-'));
  const port = await freeLoopbackPort();
  writeFileSync(join(dir, 'prometheus.yml'), 'global: { scrape_interval: 1m }\n');
  const proc = spawn(
    bin,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--web.enable-remote-write-receiver',
    ],
    { stdio: 'ignore' },
  );
  try {
    await waitForHttp(`http://127.0.0.1:${port}/-/ready`, 30_000);
    const enc = new MetricsEncoder({ gatewayId: 'bench' });
    // Samples of one series must come in time order: request i of a gateway carries the time start + i s.
    const start = Date.now() - opts.recorded * 1000;
    const requests = Array.from({ length: opts.gateways }, (_, g) =>
      Array.from({ length: opts.recorded }, (_, i) => {
        const { batch } = fleetBatch(opts.devices, 1, start + i * 1000, i);
        for (const d of batch) d.deviceId = `g${g}-${d.deviceId}`;
        const b = new WriteRequestBuilder({ resourceLabels: [], targetInfo: false });
        b.addMetrics(decodeMetricsRequest(enc.encode(batch)));
        return { body: snappy.compressSync(Buffer.from(b.encode())), samples: b.samples };
      }),
    );
    const url = `http://127.0.0.1:${port}/api/v1/write`;
    let counting = false;
    let samples = 0;
    let refused = 0;
    let stop = false;
    const loops = requests.map(async (list) => {
      for (const r of list) {
        if (stop) return;
        const res = await fetch(url, {
          method: 'POST',
          body: r.body,
          headers: {
            'content-type': 'application/x-protobuf',
            'content-encoding': 'snappy',
            'x-prometheus-remote-write-version': '0.1.0',
          },
        });
        await res.arrayBuffer();
        if (!counting) continue;
        if (res.ok) samples += r.samples;
        else refused++;
      }
    });
    await new Promise((r) => setTimeout(r, opts.warmupSeconds * 1000));
    counting = true;
    const t0 = performance.now();
    await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, opts.seconds * 1000))]);
    const seconds = (performance.now() - t0) / 1000;
    const counted = samples;
    const rssBytes = rssOf(proc.pid);
    stop = true;
    await Promise.all(loops);
    return { samplesPerSecond: counted / seconds, rssBytes, refused };
  } finally {
    proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
