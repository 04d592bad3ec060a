import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { startBinary, type ChildService } from '../../runtime/process/child.js';
import { freeLoopbackPort, scrapeMetric } from '../bench/util.js';
import { SeqBackend } from './ledger.js';
import { FaultProxy } from './proxy.js';
import { buildSlowDisk, type SlowDisk } from './slow-disk.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const agentMain = here('../../agent/main.js');
const aggregatorMain = here('../../aggregator/main.js');

export interface WorldOptions {
  /** Aggregator nodes declared in the cluster (1 = a single node). */
  nodes: number;
  /** The agent's buffer cap (buffer.max_bytes), e.g. '1MiB'; default the agent's. */
  bufferCap?: string;
  /** The agent reaches the (single) aggregator through a proxy that can delay, drop and reset. */
  proxy?: boolean;
  /** The agent runs with a throttle on its fsyncs (slow-disk.ts) the scenario sets. */
  slowDisk?: boolean;
  quiet: boolean;
}

/**
 * The processes of a fault run: aggregator nodes exporting to one local OTLP backend (the harness's record of what
 * came out), an agent uplinking to them (through a FaultProxy when asked), on fixed loopback ports so any of them can
 * be killed and started again on the same ports and data.
 */
export class World {
  readonly backend = new SeqBackend();
  readonly aggregators: (ChildService | null)[];
  agent: ChildService | null = null;
  proxy: FaultProxy | null = null;
  slowDisk: SlowDisk | null = null;
  /** What a scenario found wrong besides the accounting (the run fails with these). */
  readonly problems: string[] = [];
  private ports: { grpc: number; api: number }[] = [];
  private agentPorts = { mqtt: 0, http: 0 };
  private secretFile = '';

  constructor(
    readonly dir: string,
    private readonly o: WorldOptions,
  ) {
    this.aggregators = Array.from({ length: o.nodes }, () => null);
  }

  get mqttUrl(): string {
    return `mqtt://127.0.0.1:${this.agentPorts.mqtt}`;
  }

  agentMetricsUrl(): string {
    return `http://127.0.0.1:${this.agentPorts.http}/metrics`;
  }

  nodeMetricsUrl(i: number): string {
    return `http://127.0.0.1:${this.ports[i].api}/metrics`;
  }

  nodeApi(i: number): string {
    return `http://127.0.0.1:${this.ports[i].api}`;
  }

  async init(): Promise<void> {
    await this.backend.start();
    for (let i = 0; i < this.o.nodes; i++)
      this.ports.push({ grpc: await freeLoopbackPort(), api: await freeLoopbackPort() });
    this.agentPorts = { mqtt: await freeLoopbackPort(), http: await freeLoopbackPort() };
    mkdirSync(this.dir, { recursive: true });
    this.secretFile = join(this.dir, 'cluster.secret');
    writeFileSync(this.secretFile, randomBytes(32).toString('hex'));
    if (this.o.slowDisk) this.slowDisk = await buildSlowDisk(this.dir);
    if (this.o.proxy) {
      this.proxy = new FaultProxy(this.ports[0].grpc);
      await this.proxy.start();
    }
  }

  log(msg: string): void {
    if (!this.o.quiet) process.stderr.write(`${msg}\n`);
  }

  async startAggregator(i: number): Promise<void> {
    const p = this.ports[i];
    const members = this.ports.map((q, k) => `node-${k}=127.0.0.1:${q.grpc}`);
    this.aggregators[i] = await startBinary(
      join(this.dir, `node-${i}`),
      'aggregator',
      aggregatorMain,
      {
        node: { id: `node-${i}`, data_dir: join(this.dir, `node-${i}`, 'data') },
        grpc: { host: '127.0.0.1', port: p.grpc },
        otlp_http: { enabled: false },
        api: { host: '127.0.0.1', port: p.api },
        export: {
          protocol: 'otlp_http',
          endpoint: `http://127.0.0.1:${this.backend.port}`,
          batch: { max_delay: '100ms' },
        },
        cluster:
          this.o.nodes > 1
            ? { members, secret_file: this.secretFile, probe_interval: '200ms', failure_timeout: '2s' }
            : {},
        log: { level: 'warn' },
      },
      `http://127.0.0.1:${p.api}/readyz`,
      { logFile: join(this.dir, `node-${i}.log`), keepOutput: 20_000 },
    );
  }

  async startAgent(): Promise<void> {
    const endpoints = this.proxy ? [`127.0.0.1:${this.proxy.port}`] : this.ports.map((p) => `127.0.0.1:${p.grpc}`);
    this.agent = await startBinary(
      join(this.dir, 'agent'),
      'agent',
      agentMain,
      {
        agent: { id: 'fault-gw', data_dir: join(this.dir, 'agent', 'data') },
        mqtt: { broker: { tcp: { host: '127.0.0.1', port: this.agentPorts.mqtt }, allow_anonymous: true } },
        uplink: { endpoints, token: '', timeout: '3s' },
        batch: { max_delay: '50ms' },
        ...(this.o.bufferCap ? { buffer: { max_bytes: this.o.bufferCap } } : {}),
        http: { host: '127.0.0.1', port: this.agentPorts.http },
        log: { level: 'warn' },
      },
      `http://127.0.0.1:${this.agentPorts.http}/readyz`,
      {
        logFile: join(this.dir, 'agent.log'),
        keepOutput: 20_000,
        ...(this.slowDisk ? { env: this.slowDisk.env } : {}),
      },
    );
  }

  async metrics(url: string): Promise<string> {
    return (await fetch(url).catch(() => null))?.text() ?? '';
  }

  /** Waits until the agent has delivered everything and every node exported what it holds. */
  async drained(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const agent = await this.metrics(this.agentMetricsUrl());
      const nodes = await Promise.all(this.ports.map((_, i) => this.metrics(this.nodeMetricsUrl(i))));
      if (
        agent !== '' &&
        nodes.every((m) => m !== '') &&
        scrapeMetric(agent, 'otlp_edge_agent_uplink_backlog_batches') === 0 &&
        nodes.every((m) => scrapeMetric(m, 'otlp_edge_aggregator_export_queue_batches') === 0)
      )
        return true;
      await new Promise((r) => setTimeout(r, 200));
    }
    return false;
  }

  async close(): Promise<void> {
    await this.agent?.stop();
    await Promise.all(this.aggregators.map((a) => a?.stop()));
    await this.proxy?.close();
    await this.backend.close();
  }
}
