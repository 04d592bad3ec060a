import { scrapeMetric } from '../bench/util.js';
import type { World, WorldOptions } from './world.js';

export interface ScenarioOptions {
  repeats: number;
  outageMs: number;
  /** Stops the devices' load early (the run stops it anyway when the scenario ends). */
  stopDevices(): Promise<void>;
}

/**
 * A fault scenario: the processes it needs, how it starts them, what it does to them under load, and what its
 * accounting must show — no acknowledged reading lost, or (past the buffer cap) exactly the counted drops lost,
 * oldest first.
 */
export interface Scenario {
  about: string;
  world: Omit<WorldOptions, 'quiet'>;
  /** Starts the processes (default: every node, then the agent). */
  setup?(w: World): Promise<void>;
  run(w: World, o: ScenarioOptions): Promise<void>;
  promise: 'nothing-lost' | 'drops-counted';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The agent's group commits so far: how many, and their total seconds (encode, zstd, the fsync'd write). */
async function commits(w: World): Promise<{ n: number; s: number }> {
  const m = await w.metrics(w.agentMetricsUrl());
  return {
    n: scrapeMetric(m, 'otlp_edge_agent_commit_duration_seconds_count'),
    s: scrapeMetric(m, 'otlp_edge_agent_commit_duration_seconds_sum'),
  };
}

export const SCENARIOS: Record<string, Scenario> = {
  'agent-kill9': {
    about: 'kill -9 the agent at random moments under QoS 1 load, --repeats times, restarting it on the same buffer',
    world: { nodes: 1 },
    promise: 'nothing-lost',
    async run(w, o) {
      for (let i = 1; i <= o.repeats; i++) {
        await sleep(300 + Math.floor(Math.random() * 900));
        await w.agent!.kill9();
        w.log(`kill -9 of the agent ${i}/${o.repeats}`);
        await w.startAgent();
      }
      await sleep(1000);
    },
  },
  'aggregator-outage': {
    about: 'the aggregator is down for --outage under load; the agent buffers, then drains oldest first',
    world: { nodes: 1 },
    promise: 'nothing-lost',
    async run(w, o) {
      await sleep(1500);
      await w.aggregators[0]!.kill9();
      w.log(`aggregator down for ${o.outageMs} ms`);
      await sleep(o.outageMs);
      await w.startAggregator(0);
      w.log('aggregator back');
      await sleep(1000);
    },
  },
  'disk-cap': {
    about:
      'an outage outlasts the agent buffer cap (128 KiB here): the oldest batches are dropped, each counted; the devices stop before the node returns',
    world: { nodes: 1, bufferCap: '128KiB' },
    promise: 'drops-counted',
    async run(w, o) {
      await sleep(1000);
      // Stopped cleanly: every request in flight is answered. (After a kill -9 a batch the node stored may go
      // unacknowledged, and the cap then counts as dropped a batch that did arrive: at least once, not exactly.)
      await w.aggregators[0]!.stop();
      w.log(`aggregator down for ${o.outageMs} ms; the agent's buffer is capped at 128 KiB`);
      await sleep(o.outageMs);
      // The load stops before the node returns. A drain that runs while the cap is still struck drops the batches
      // just behind those it is sending (right: they are the oldest not in flight), which from the devices looks
      // like delivered readings between lost ones; with no new readings the ordering seen is the cap's own.
      await o.stopDevices();
      w.log('devices stopped');
      await w.startAggregator(0);
      w.log('aggregator back');
      await sleep(1000);
    },
  },
  'node-kill9': {
    about: 'kill -9 one node of a 3-node cluster under load; the ring moves its devices; it returns',
    world: { nodes: 3 },
    promise: 'nothing-lost',
    async run(w, o) {
      await sleep(1500);
      await w.aggregators[2]!.kill9();
      w.log(`node-2 killed (-9) for ${o.outageMs} ms`);
      await sleep(o.outageMs);
      await w.startAggregator(2);
      w.log('node-2 back');
      await sleep(3000);
    },
  },
  'node-join': {
    about: 'a 3-node cluster runs on two nodes under load; the third joins and takes its devices',
    world: { nodes: 3 },
    promise: 'nothing-lost',
    async setup(w) {
      await w.startAggregator(0);
      await w.startAggregator(1);
      await w.startAgent();
    },
    async run(w, o) {
      await sleep(Math.max(3000, o.outageMs / 2));
      await w.startAggregator(2);
      w.log('node-2 joined');
      await sleep(3000);
    },
  },
  'slow-disk': {
    about:
      "the agent's disk turns slow under load: each fsync waits 200 ms for --outage (kill -9 at its end), then 1 s for 2 s",
    world: { nodes: 1, slowDisk: true },
    promise: 'nothing-lost',
    async run(w, o) {
      const disk = w.slowDisk!;
      await sleep(1500);
      const c0 = await commits(w);
      disk.set(200);
      w.log(`every fsync of the agent takes 200 ms longer for ${o.outageMs} ms`);
      await sleep(o.outageMs);
      const c1 = await commits(w);
      await w.agent!.kill9();
      w.log('kill -9 of the agent on the slow disk; restarting it on the same buffer');
      await w.startAgent();
      disk.set(1000);
      w.log('every fsync takes 1 s longer for 2 s');
      await sleep(2000);
      disk.set(0);
      w.log('the disk is fast again');
      // The throttle must have taken, or this scenario tested nothing: commits under it took at least its delay.
      const slowMs = (1000 * (c1.s - c0.s)) / Math.max(1, c1.n - c0.n);
      w.log(`group commits took ${slowMs.toFixed(0)} ms on average while each fsync was delayed 200 ms`);
      if (!(slowMs >= 200))
        w.problems.push(`the disk throttle did not take: commits took ${slowMs.toFixed(0)} ms, expected >= 200 ms`);
      await sleep(1500);
    },
  },
  partition: {
    about: 'the link to the aggregator delays (300 ms), then black-holes for --outage, resets, refuses, and heals',
    world: { nodes: 1, proxy: true },
    promise: 'nothing-lost',
    async run(w, o) {
      const p = w.proxy!;
      await sleep(1000);
      p.delayMs = 300;
      w.log('link delayed 300 ms');
      await sleep(2000);
      p.partitioned = true;
      w.log(`link black-holed for ${o.outageMs} ms`);
      await sleep(o.outageMs);
      p.partitioned = false;
      p.delayMs = 0;
      p.reset();
      p.refusing = true;
      w.log('connections reset; new ones refused for 1 s');
      await sleep(1000);
      p.refusing = false;
      w.log('link healed');
      await sleep(1000);
    },
  },
};
