/**
 * console: the duty console in headless Chromium (Debian's chromium, playwright-core) against
 * `watchpost start` (embedded store) holding OPEN_ALERTS open alerts (default 1,000) under a
 * background load of BACKGROUND readings/s (default 10,000) from separate publisher processes.
 * Prints the board's first render (navigation start to every open alert's row in the page,
 * RENDERS times) and a new alarm's time from its reading's PUBACK to its row in the page (ALARMS
 * times; both instants on this machine's wall clock, the row seen at the browser's next frame; it
 * can be negative: the row may be drawn before the PUBACK reaches the publisher), and from its PUBLISH.
 * Environment: OPEN_ALERTS, BACKGROUND, DEVICES, PUBLISHERS, RENDERS, ALARMS.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { chromium, type BrowserContext } from 'playwright-core';
import { stringify } from 'yaml';
import { BENCH_METRICS, benchCatalogue, benchDevices, endProgress, env, printTable, progress, runPublishers, startWatchpost, stopChild } from './harness.js';
import type { PublisherJob } from './publisher.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const TOKEN = 'bench-console-token-0123';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export async function main(): Promise<void> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (apt-get install chromium)`);
  const openAlerts = env('OPEN_ALERTS', 1000);
  const background = env('BACKGROUND', 10_000);
  const devices = env('DEVICES', 200);
  const publishers = env('PUBLISHERS', 2);
  const renders = env('RENDERS', 5);
  const alarms = env('ALARMS', 20);
  const list = benchDevices(devices);
  const bench = benchCatalogue(list);
  const dir = mkdtempSync(join(tmpdir(), 'watchpost-bench-console-'));
  const alarmAssets = Array.from({ length: openAlerts + alarms }, (_, i) => ({
    id: `alarm-${i}`,
    type: 'bridge',
    name: `告警桥 ${i}`,
    street: `街道 ${i % 12}`,
    location: [114.1 + (i % 40) * 0.004, 22.6 + Math.floor(i / 40) * 0.004],
  }));
  writeFileSync(
    join(dir, 'bench.yaml'),
    stringify({
      broker: { host: '127.0.0.1', port: 0 },
      api: { host: '127.0.0.1', port: 0, tokens: [{ name: 'bench-duty', token: TOKEN, role: 'operator' }] },
      storage: { data_dir: join(dir, 'data') },
      metrics: { ...BENCH_METRICS, trigger: { unit: '', min: 0, max: 1000 } },
      assets: [...bench.assets, ...alarmAssets],
      devices: [...bench.devices, { id: 'alarm-dau', secret: 'alarm-secret-01', assets: alarmAssets.map((a) => a.id) }],
      rules: [{ id: 'console-bench', name: '基准报警', match: { asset_type: 'bridge', metric: 'trigger' }, levels: { red: { above: 100 } }, plan: ['核查'] }],
    }),
  );
  const wp = await startWatchpost(dir).catch((err: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  const profile = mkdtempSync(join(tmpdir(), 'watchpost-bench-chromium-'));
  let context: BrowserContext | undefined;
  try {
    const alarm = await mqtt.connectAsync(wp.mqttUrl, { username: 'alarm-dau', password: 'alarm-secret-01', protocolVersion: 4 });
    const ts = Date.now() - 60_000;
    for (let i = 0; i < openAlerts; i++) await alarm.publishAsync(`telemetry/alarm-${i}/s1`, JSON.stringify({ ts, values: { trigger: 500 } }), { qos: 1 });
    const auth = { authorization: `Bearer ${TOKEN}` };
    for (let n = 0; n < 600; n++) {
      const firing = ((await (await fetch(`${wp.apiUrl}/api/v1/alerts?state=firing&limit=1000`, { headers: auth })).json()) as { alerts: unknown[] }).alerts.length;
      progress(`console: ${firing} of ${openAlerts} alerts open`);
      if (firing >= openAlerts) break;
      if (n === 599) throw new Error(`only ${firing} of ${openAlerts} alerts opened`);
      await new Promise((r) => setTimeout(r, 200));
    }

    const perDeviceInterval = Math.round((1000 * devices) / background);
    const per = Math.ceil(devices / publishers);
    const durationMs = 30_000 + renders * 4000 + alarms * 1500;
    const stop = new AbortController();
    const jobs: PublisherJob[] = Array.from({ length: publishers }, (_, p) => ({
      url: wp.mqttUrl,
      devices: list.slice(p * per, (p + 1) * per),
      metric: 'load',
      readingsPerMessage: 1,
      durationMs,
      inflight: 1,
      t0: Date.now() - 30 * 86_400_000,
      intervalMs: perDeviceInterval,
    }));
    let backgroundAcked = 0;
    const load = runPublishers(jobs, (acked) => (backgroundAcked = acked), stop.signal);
    await new Promise((r) => setTimeout(r, 3000)); // the background load settles
    const loadStart = performance.now();
    const ackedAtStart = backgroundAcked;

    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1400, height: 900 } });
    // Signed in once: the session cookie goes into the browser.
    const signIn = await fetch(`${wp.apiUrl}/console/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: TOKEN }) });
    const cookie = /^watchpost_session=([^;]+)/.exec(signIn.headers.get('set-cookie') ?? '')![1]!;
    await context.addCookies([{ name: 'watchpost_session', value: cookie, url: wp.apiUrl, httpOnly: true, sameSite: 'Strict' }]);
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(60_000);
    page.on('crash', () => process.stderr.write('console bench: the page crashed\n'));
    context.on('close', () => process.stderr.write('console bench: the browser closed\n'));

    const firstRender: number[] = [];
    // Each render in a new tab (the one before closed first): a fresh visit, not a reload that tears down a full board.
    for (let i = 0; i < renders; i++) {
      const tab = await context.newPage();
      await tab.goto(`${wp.apiUrl}/console`);
      firstRender.push(
        await tab.evaluate(
          (n) =>
            new Promise<number>((resolve, reject) => {
              const check = () => {
                const rows = document.querySelectorAll('[data-testid="alert-row"]').length;
                if (rows >= n) resolve(performance.now());
                else if (performance.now() > 60_000) reject(new Error(`${rows} of ${n} rows after 60 s`));
                else requestAnimationFrame(check);
              };
              check();
            }),
          openAlerts,
        ),
      );
      progress(`console: first render ${i + 1}/${renders}: ${firstRender[i]!.toFixed(0)} ms`);
      if (process.env.CONSOLE_TIMINGS)
        process.stderr.write(
          `${JSON.stringify(await tab.evaluate(() => performance.getEntriesByType('resource').map((e) => [e.name.replace(location.origin, ''), Math.round(e.startTime), Math.round(e.duration), (e as PerformanceResourceTiming).transferSize])))}\n`,
        );
      await tab.close();
    }
    await page.goto(`${wp.apiUrl}/console`);
    await page.getByTestId('connection').filter({ hasText: '实时' }).waitFor();
    await page
      .getByTestId('alert-row')
      .nth(openAlerts - 1)
      .waitFor();

    const onScreen: number[] = [];
    const fromPublish: number[] = [];
    for (let i = 0; i < alarms; i++) {
      const asset = `alarm-${openAlerts + i}`;
      const seen = page.evaluate(
        (id) =>
          new Promise<number>((resolve) => {
            const check = () => (document.querySelector(`tr[data-asset-id="${id}"]`) ? resolve(Date.now()) : requestAnimationFrame(check));
            check();
          }),
        asset,
      );
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(r))); // the watcher runs before the reading is sent
      const sent = Date.now();
      await alarm.publishAsync(`telemetry/${asset}/s1`, JSON.stringify({ ts: sent, values: { trigger: 500 } }), { qos: 1 });
      const acked = Date.now();
      const shown = await seen;
      onScreen.push(shown - acked);
      fromPublish.push(shown - sent);
      progress(`console: new alarm ${i + 1}/${alarms}: ${onScreen[i]} ms after its PUBACK`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const backgroundRate = Math.round(((backgroundAcked - ackedAtStart) * 1000) / (performance.now() - loadStart));
    stop.abort();
    await load;
    await alarm.endAsync();
    endProgress();
    firstRender.sort((a, b) => a - b);
    onScreen.sort((a, b) => a - b);
    fromPublish.sort((a, b) => a - b);
    const figures = {
      scenario: 'console',
      open_alerts: openAlerts,
      background_readings_per_s: backgroundRate,
      first_render_p50_ms: Math.round(percentile(firstRender, 50)),
      first_render_max_ms: Math.round(firstRender[firstRender.length - 1]!),
      new_alarm_p50_ms: percentile(onScreen, 50),
      new_alarm_p99_ms: percentile(onScreen, 99),
      new_alarm_max_ms: onScreen[onScreen.length - 1]!,
      new_alarm_from_publish_p50_ms: percentile(fromPublish, 50),
      new_alarm_from_publish_max_ms: fromPublish[fromPublish.length - 1]!,
      renders: firstRender.length,
      alarms: onScreen.length,
    };
    printTable(Object.entries(figures));
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  } finally {
    await context?.close();
    rmSync(profile, { recursive: true, force: true });
    await stopChild(wp.child);
    rmSync(dir, { recursive: true, force: true });
  }
}
