import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { formatProgress, ProgressDisplay } from '../../../../simulators/fleet/progress.js';
import type { FleetTotals } from '../../../../simulators/fleet/fleet.js';

function totals(sent: number, extra: Partial<FleetTotals> = {}): FleetTotals {
  return {
    devices: 1000,
    connected: 1000,
    reconnects: 0,
    sent,
    acked: sent - 41,
    readings: { sent, acked: sent - 41 },
    events: { sent: 0, acked: 0 },
    errors: 0,
    rejections: 0,
    behind: 0,
    owed: 0,
    backlog: 0,
    elapsedMs: 0,
    ...extra,
  };
}

test('the status line reads devices, sent with its rate, acked, errors and the p99 ack latency', () => {
  assert.equal(
    formatProgress(totals(52_341), totals(42_329), 1000, 12, true),
    'devices 1,000/1,000 connected | sent 52,341 (10,012/s) | acked 52,300 | errors 0 | p99 ack 12 ms',
  );
  assert.equal(
    formatProgress(totals(10, { behind: 3 }), null, 1000, null, false),
    'devices 1,000/1,000 connected | sent 10 (0/s) | errors 0 | behind 3',
  );
});

function sink(isTTY: boolean): Writable & { isTTY: boolean; text: string } {
  const w = new Writable({ write: (c, _e, cb) => ((w.text += String(c)), cb()) }) as Writable & {
    isTTY: boolean;
    text: string;
  };
  w.text = '';
  w.isTTY = isTTY;
  return w;
}

test('on a terminal the line is rewritten in place; in a log it is plain lines; quiet writes nothing', async () => {
  let sent = 0;
  const source = { totals: () => totals((sent += 100)), takeIntervalAckLatency: () => 3.25 };
  const tty = sink(true);
  const live = new ProgressDisplay(source, { stream: tty, intervalMs: 10 });
  live.start();
  await new Promise((r) => setTimeout(r, 35));
  live.stop();
  // eslint-disable-next-line no-control-regex -- the terminal's erase-line escape is what this checks
  assert.match(tty.text, /^\r.*p99 ack 3\.3 ms\x1b\[K\r/);
  assert.ok(tty.text.endsWith('\n') && !tty.text.slice(0, -1).includes('\n'));

  const log = sink(false);
  const lines = new ProgressDisplay(source, { stream: log, intervalMs: 10 });
  lines.start();
  await new Promise((r) => setTimeout(r, 35));
  lines.stop();
  assert.ok(!log.text.includes('\r'));
  assert.ok(log.text.split('\n').length >= 3);

  const quiet = sink(true);
  const off = new ProgressDisplay(source, { stream: quiet, mode: 'off' });
  off.start();
  off.stop();
  assert.equal(quiet.text, '');
});
