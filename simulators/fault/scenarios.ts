import type { World, WorldOptions } from './world.js';

export interface ScenarioOptions {
  repeats: number;
  outageMs: number;
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
    about: 'an outage outlasts the agent buffer cap (128 KiB here): the oldest batches are dropped, each counted',
    world: { nodes: 1, bufferCap: '128KiB' },
    promise: 'drops-counted',
    async run(w, o) {
      await sleep(1000);
      // Stopped cleanly: every request in flight is answered. (After a kill -9 a batch the node stored may go
      // unacknowledged, and the cap then counts as dropped a batch that did arrive: at least once, not exactly.)
      await w.aggregators[0]!.stop();
      w.log(`aggregator down for ${o.outageMs} ms; the agent's buffer is capped at 128 KiB`);
      await sleep(o.outageMs);
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
