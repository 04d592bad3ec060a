import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TurnBudget, type Deferrable } from '../../../../agent/receiver/turn-budget.js';

class Conn implements Deferrable {
  deferred: Buffer[] | null = null;
  paused = 0;
  resumed = 0;
  constructor(readonly name: string) {}
  pause(): void {
    this.paused++;
  }
  resume(): void {
    this.resumed++;
  }
}

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

test('past its budget a turn puts chunks aside, pauses their connection, and timers run before the rest', async () => {
  const ran: string[] = [];
  let timerAt = -1;
  const budget = new TurnBudget<Conn>(10, (c, chunk) => {
    busy(2);
    ran.push(`${c.name}:${chunk.toString()}`);
  });
  const conns = Array.from({ length: 20 }, (_, i) => new Conn(`c${i}`));
  setTimeout(() => (timerAt = ran.length), 0);
  // One poll phase's worth of input: every connection has two chunks (80 ms of work against a 10 ms budget).
  for (const c of conns) budget.offer(c, Buffer.from('a'));
  for (const c of conns) budget.offer(c, Buffer.from('b'));
  const now = ran.length;
  assert.ok(now >= 1 && now < 20, `some chunks ran at once, the rest waited (${now} ran)`);
  assert.ok(budget.backlog > 0);
  const waiting = conns.filter((c) => c.deferred !== null);
  assert.ok(
    waiting.every((c) => c.paused === 1),
    'a connection with chunks aside is paused',
  );

  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(ran.length, 40, 'everything ran in the end');
  assert.ok(timerAt >= 0 && timerAt < 40, `a timer ran while the backlog drained (after ${timerAt} chunks)`);
  for (const c of conns) {
    const mine = ran.filter((r) => r.startsWith(`${c.name}:`));
    assert.deepEqual(mine, [`${c.name}:a`, `${c.name}:b`], `order kept for ${c.name}`);
    assert.equal(c.resumed, c.paused, `${c.name} resumed as often as paused`);
    assert.equal(c.deferred, null);
  }
  assert.equal(budget.backlog, 0);
});

test('within its budget every chunk runs at once and nothing is paused', () => {
  const ran: string[] = [];
  const budget = new TurnBudget<Conn>(1000, (c, chunk) => ran.push(`${c.name}:${chunk.toString()}`));
  const c = new Conn('x');
  for (let i = 0; i < 100; i++) budget.offer(c, Buffer.from(String(i)));
  assert.equal(ran.length, 100);
  assert.equal(c.paused, 0);
});
