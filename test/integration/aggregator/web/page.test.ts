import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import puppeteer, { type Page } from 'puppeteer-core';
import { repoRoot } from '../../../helpers/agent-process.js';
import { mosquittoPub } from '../../../helpers/mosquitto.js';
import { waitFor } from '../../../helpers/ports.js';
import { tempDir } from '../../../helpers/tmp.js';

/** Where the page's screenshots are kept (look at them: they are the page as an operator sees it). */
const artifacts = join(repoRoot, 'test-artifacts', 'page');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const OFFLINE_AFTER_MS = 15_000; // the demo's devices.offline_after

async function rows(page: Page): Promise<string[]> {
  return page.$$eval('#devices tr[data-device]', (trs) => trs.map((tr) => tr.getAttribute('data-device')!));
}

test('the fleet page of the demo in Chromium: devices listed, a published reading shows live, a silent device turns offline', async (t) => {
  mkdirSync(artifacts, { recursive: true });
  const dir = tempDir(t);
  const demo = spawn(
    process.execPath,
    [join(repoRoot, 'dist', 'simulators', 'main.js'), 'demo', '--devices', '12', '--duration', '300', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  demo.stdout.on('data', (d: Buffer) => (out += d));
  demo.stderr.on('data', (d: Buffer) => (out += d));
  // Ctrl-C, as a user would: the demo stops its aggregator and agent (SIGKILL would leave them running).
  t.after(async () => {
    if (demo.exitCode !== null) return;
    const exited = new Promise((r) => demo.once('exit', r));
    demo.kill('SIGINT');
    const late = setTimeout(() => demo.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(late);
  });
  const url = await waitFor(
    'the demo prints its page',
    async () => /Open the fleet page: +(\S+)/.exec(out)?.[1],
    60_000,
  );
  const mqttPort = Number(/MQTT 127\.0\.0\.1:(\d+)/.exec(out)![1]);

  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${(e as Error).message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  /** Waits for a condition in the page; a timeout says what went wrong in the page meanwhile. */
  const until = (expr: string, timeout: number) =>
    page.waitForFunction(expr, { timeout }).catch((e: Error) => {
      throw new Error(`${e.message} waiting for ${expr}; in the page: ${problems.join('; ') || 'nothing wrong'}`);
    });

  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await waitFor(
    'the demo devices listed',
    async () => (await rows(page)).filter((id) => id.startsWith('demo-')).length === 12,
    20_000,
  );
  await until(`document.getElementById('live')?.textContent === 'live'`, 10_000);
  await waitFor(
    'totals show the fleet',
    async () => Number(await page.$eval('#totals div:nth-child(2) dd', (e) => e.textContent)) === 12,
    15_000,
  );
  assert.equal(await page.$eval('#members tr td:nth-child(2)', (e) => e.textContent), 'healthy');
  await page.screenshot({ path: join(artifacts, 'fleet.png'), fullPage: true });

  // Search narrows the list (the API's match=).
  await page.type('#search', 'demo-0');
  await waitFor('search applied', async () => (await rows(page)).every((id) => id.includes('demo-0')));
  await page.$eval('#search', (e: any) => (e.value = ''));

  // A device of our own, published with mosquitto_pub, in the device view.
  const publish = async (seq: number, temperature: number) => {
    const r = await mosquittoPub([
      '-h',
      '127.0.0.1',
      '-p',
      String(mqttPort),
      '-i',
      'probe-7',
      '-q',
      '1',
      '-t',
      'devices/probe-7/telemetry',
      '-m',
      JSON.stringify({ seq, temperature, humidity: 40 + seq }),
    ]);
    assert.equal(r.code, 0, r.out);
  };
  await publish(1, 21.5);
  await waitFor('probe-7 known', async () => (await fetch(`${url}v1/devices/probe-7`)).ok, 10_000);
  await page.goto(`${url}#/devices/probe-7`, { waitUntil: 'domcontentloaded' });
  const latestIs = (v: string) =>
    `document.querySelector('#latest tr[data-metric="temperature"] td')?.textContent === '${v}'`;
  await until(latestIs('21.5'), 10_000);
  await until(`document.getElementById('live')?.textContent === 'live'`, 10_000);
  const sentAt = Date.now();
  await publish(2, 87.25);
  await until(latestIs('87.25'), 2_000);
  const shownAfter = Date.now() - sentAt;
  assert.ok(shownAfter <= 2000, `shown ${shownAfter} ms after publishing`);
  assert.match(await page.$eval('#device-status', (e) => e.textContent ?? ''), /online/);
  assert.match(await page.$eval('#resource', (e) => e.textContent ?? ''), /otlp_edge\.gateway\.iddemo-gw/);
  assert.equal(await page.$$eval('#charts .uplot', (c) => c.length), 2, 'a live chart per metric');
  await page.screenshot({ path: join(artifacts, 'device.png'), fullPage: true });

  // probe-7 falls silent: the page says offline within offline_after + 5 s.
  await until(`/offline/.test(document.getElementById('device-status')?.textContent ?? '')`, OFFLINE_AFTER_MS + 5000);
  assert.ok(Date.now() - sentAt <= OFFLINE_AFTER_MS + 5000);
  await page.screenshot({ path: join(artifacts, 'device-offline.png'), fullPage: true });
  // The hour's rollups draw from the series API.
  await page.click('input[name="range"][value="hour"]');
  await until(`/last hour/.test(document.getElementById('charts')?.textContent ?? '')`, 5000);
  assert.deepEqual(problems, [], 'no console errors, page errors or failed requests');
});
