/**
 * console: the duty console in headless Chromium (Debian's chromium, playwright-core) against
 * `watchpost start` (embedded store) holding OPEN_ALERTS open alerts (default 1,000) under a
 * background load of BACKGROUND readings/s (default 10,000) from separate publisher processes.
 * Prints the board's first render (navigation start to every open alert's row in the page, and to
 * its first screenful of rows; RENDERS times under the load, and IDLE_RENDERS times before the
 * load starts: the ceiling of this machine in the same run), where that time goes (document,
 * script, the session and list requests' start, time to first byte and end, their bytes, the
 * browser's own render after the lists; Watchpost's event loop and store writes meanwhile), the
 * firing list's answer time from this process in the full and the board view, and a new alarm's
 * time from its reading's PUBACK to its row in the page (ALARMS times; both instants on this
 * machine's wall clock, the row seen at the browser's next frame; it can be negative: the row may
 * be drawn before the PUBACK reaches the publisher), and from its PUBLISH.
 * Environment: OPEN_ALERTS, BACKGROUND, DEVICES, PUBLISHERS, RENDERS, IDLE_RENDERS, ALARMS;
 * CONSOLE_TIMINGS=1 prints each render's timings, CONSOLE_CPU_PROFILE=FILE the browser's CPU
 * profile of the last render under load.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { chromium, type BrowserContext } from 'playwright-core';
import { stringify } from 'yaml';
import { BENCH_METRICS, benchCatalogue, benchDevices, endProgress, env, printTable, progress, runPublishers, startWatchpost, stopChild } from './harness.js';
import type { PublisherJob } from './publisher.js';
import { metricValue } from './support/metric-value.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const TOKEN = 'bench-console-token-0123';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Rows that fill the bench's 1400×900 viewport (and some): the first screenful. */
const SCREENFUL = 25;
/** The lists the board fetches, as the API's full alerts and as the board's compact view. */
const LIST_QUERIES = { full: '/api/v1/alerts?state=firing&limit=1000', board: '/api/v1/alerts?state=firing&limit=1000&view=board' };

interface RequestTiming {
  path: string;
  /** ms after navigation start */
  start: number;
  /** request sent to its first byte */
  ttfb: number;
  end: number;
  bytes: number;
}

interface RenderBreakdown {
  document: number;
  script: number;
  requests: RequestTiming[];
}

interface Renders {
  firstRender: number[];
  firstScreen: number[];
  breakdowns: RenderBreakdown[];
}

function summary(r: Renders, suffix: string): Record<string, number> {
  const sorted = [...r.firstRender].sort((a, b) => a - b);
  return {
    [`first_render${suffix}_p50_ms`]: Math.round(percentile(sorted, 50)),
    [`first_render${suffix}_max_ms`]: Math.round(sorted[sorted.length - 1]!),
    [`first_screen${suffix}_p50_ms`]: Math.round(median(r.firstScreen)),
  };
}

/** Where the first render goes: medians over the renders, ms after navigation start. */
function breakdown(r: Renders): Record<string, number> {
  // The list requests answered before the rows were drawn.
  const lists = r.breakdowns.map((b, i) => b.requests.filter((q) => q.path.startsWith('/api/v1/alerts') && q.end <= r.firstRender[i]!));
  const listsEnd = lists.map((l) => Math.max(...l.map((q) => q.end)));
  return {
    document_loaded_p50_ms: median(r.breakdowns.map((b) => b.document)),
    script_loaded_p50_ms: median(r.breakdowns.map((b) => b.script)),
    session_ttfb_p50_ms: median(r.breakdowns.map((b) => b.requests.find((q) => q.path === '/console/session')?.ttfb ?? 0)),
    lists_requested_p50_ms: median(lists.map((l) => Math.min(...l.map((q) => q.start)))),
    lists_ttfb_p50_ms: median(lists.map((l) => Math.max(...l.map((q) => q.ttfb)))),
    lists_loaded_p50_ms: median(listsEnd),
    lists_bytes: lists[0]?.reduce((sum, q) => sum + q.bytes, 0) ?? 0,
    browser_render_p50_ms: Math.round(median(r.firstRender.map((t, i) => t - listsEnd[i]!))),
  };
}

/** Runs in the page: navigation and resource timings (ms after navigation start). */
function readBreakdown(): RenderBreakdown {
  const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
  const resources = performance.getEntriesByType('resource') as PerformanceResourceTiming[];
  const script = resources.find((e) => e.name.endsWith('.js'));
  return {
    document: Math.round(nav.responseEnd),
    script: Math.round(script?.responseEnd ?? 0),
    requests: resources
      .filter((e) => !e.name.includes('/console/assets/'))
      .map((e) => ({
        path: e.name.replace(location.origin, ''),
        start: Math.round(e.startTime),
        ttfb: Math.round(e.responseStart - (e.requestStart || e.startTime)),
        end: Math.round(e.responseEnd),
        bytes: e.decodedBodySize,
      })),
  };
}

/** GET `path` n times from this process: time to the first byte and to the whole answer, and its size. */
async function timeAnswers(url: string, headers: Record<string, string>, n: number): Promise<{ ttfb: number; total: number; bytes: number } | null> {
  const ttfb: number[] = [];
  const total: number[] = [];
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await fetch(url, { headers });
    const t1 = performance.now();
    const body = await res.arrayBuffer();
    if (!res.ok) return null;
    total.push(performance.now() - t0);
    ttfb.push(t1 - t0);
    bytes = body.byteLength;
  }
  return { ttfb: median(ttfb), total: median(total), bytes };
}

function round1(ms: number | undefined): number | null {
  return ms === undefined ? null : Math.round(ms * 10) / 10;
}

function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

/** A histogram of the Prometheus text: cumulative counts by upper bound, sum and count. */
interface Histogram {
  buckets: Array<[number, number]>;
  sum: number;
  count: number;
}

function histogram(text: string, name: string): Histogram {
  const buckets: Array<[number, number]> = [];
  let sum = 0;
  let count = 0;
  for (const line of text.split('\n')) {
    const bucket = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`).exec(line);
    if (bucket) buckets.push([bucket[1] === '+Inf' ? Infinity : Number(bucket[1]), Number(bucket[2])]);
    else if (line.startsWith(`${name}_sum `)) sum = Number(line.split(' ')[1]);
    else if (line.startsWith(`${name}_count `)) count = Number(line.split(' ')[1]);
  }
  return { buckets, sum, count };
}

/** Between two snapshots of a histogram in seconds: the mean and the upper bound of the bucket holding the p99, in ms. */
function histogramWindow(before: Histogram, after: Histogram): { mean_ms: number | null; p99_le_ms: number | null } {
  const count = after.count - before.count;
  if (count <= 0) return { mean_ms: null, p99_le_ms: null };
  const bucket = after.buckets.find(([, n], i) => n - (before.buckets[i]?.[1] ?? 0) >= 0.99 * count);
  return { mean_ms: Math.round(((after.sum - before.sum) / count) * 10_000) / 10, p99_le_ms: bucket ? bucket[0] * 1000 : null };
}

async function metricsText(apiUrl: string): Promise<string> {
  return (await fetch(`${apiUrl}/metrics`)).text();
}

export async function main(): Promise<void> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (apt-get install chromium)`);
  const openAlerts = env('OPEN_ALERTS', 1000);
  const background = env('BACKGROUND', 10_000);
  const devices = env('DEVICES', 200);
  const publishers = env('PUBLISHERS', 2);
  const renders = env('RENDERS', 5);
  const idleRenders = env('IDLE_RENDERS', 3);
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

    const answersIdle = { full: await timeAnswers(`${wp.apiUrl}${LIST_QUERIES.full}`, auth, 10), board: await timeAnswers(`${wp.apiUrl}${LIST_QUERIES.board}`, auth, 10) };

    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1400, height: 900 } });
    // Signed in once: the session cookie goes into the browser.
    const signIn = await fetch(`${wp.apiUrl}/console/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: TOKEN }) });
    const cookie = /^watchpost_session=([^;]+)/.exec(signIn.headers.get('set-cookie') ?? '')![1]!;
    await context.addCookies([{ name: 'watchpost_session', value: cookie, url: wp.apiUrl, httpOnly: true, sameSite: 'Strict' }]);
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(60_000);
    page.on('crash', () => process.stderr.write('console bench: the page crashed\n'));
    context.on('close', () => process.stderr.write('console bench: the browser closed\n'));

    /** First renders of the board, each in a new tab (the one before closed first): a fresh visit, not a reload that tears down a full board. */
    const measure = async (count: number, label: string): Promise<Renders> => {
      const firstRender: number[] = [];
      const firstScreen: number[] = [];
      const breakdowns: RenderBreakdown[] = [];
      for (let i = 0; i < count; i++) {
        const tab = await context!.newPage();
        // CONSOLE_CPU_PROFILE=FILE: the browser's CPU profile of the last render (open it in Chromium's DevTools).
        const cdp = process.env.CONSOLE_CPU_PROFILE && label === 'under load' && i === count - 1 ? await context!.newCDPSession(tab) : undefined;
        if (cdp)
          await cdp
            .send('Profiler.enable')
            .then(() => cdp.send('Profiler.setSamplingInterval', { interval: 200 }))
            .then(() => cdp.send('Profiler.start'));
        await tab.goto(`${wp.apiUrl}/console`);
        const seen = await tab.evaluate(
          ({ n, screenful }) =>
            new Promise<{ all: number; screen: number }>((resolve, reject) => {
              let screen = 0;
              const check = () => {
                const rows = document.querySelectorAll('[data-testid="alert-row"]').length;
                if (!screen && rows >= screenful) screen = performance.now();
                if (rows >= n) resolve({ all: performance.now(), screen });
                else if (performance.now() > 60_000) reject(new Error(`${rows} of ${n} rows after 60 s`));
                else requestAnimationFrame(check);
              };
              check();
            }),
          { n: openAlerts, screenful: Math.min(openAlerts, SCREENFUL) },
        );
        if (cdp) writeFileSync(process.env.CONSOLE_CPU_PROFILE!, JSON.stringify((await cdp.send('Profiler.stop')).profile));
        firstRender.push(seen.all);
        firstScreen.push(seen.screen);
        breakdowns.push(await tab.evaluate(readBreakdown));
        progress(`console: first render ${label} ${i + 1}/${count}: ${seen.all.toFixed(0)} ms`);
        if (process.env.CONSOLE_TIMINGS)
          process.stderr.write(`render ${label} ${i + 1}: ${seen.all.toFixed(0)} ms, first ${SCREENFUL} rows ${seen.screen.toFixed(0)} ms ${JSON.stringify(breakdowns[i])}\n`);
        await tab.close();
      }
      return { firstRender, firstScreen, breakdowns };
    };
    // The ceiling: the same renders without the background load, in the same run.
    const idle = await measure(idleRenders, 'idle');

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
    const answersLoaded = { full: await timeAnswers(`${wp.apiUrl}${LIST_QUERIES.full}`, auth, 10), board: await timeAnswers(`${wp.apiUrl}${LIST_QUERIES.board}`, auth, 10) };
    const loadStart = performance.now();
    const ackedAtStart = backgroundAcked;

    const metricsBefore = await metricsText(wp.apiUrl);
    const loaded = await measure(renders, 'under load');
    const metricsAfter = await metricsText(wp.apiUrl);
    const loopDelay = histogramWindow(histogram(metricsBefore, 'watchpost_event_loop_delay_seconds'), histogram(metricsAfter, 'watchpost_event_loop_delay_seconds'));
    const storeWrites = histogramWindow(histogram(metricsBefore, 'watchpost_storage_write_latency_seconds'), histogram(metricsAfter, 'watchpost_storage_write_latency_seconds'));
    const loopBusy = metricValue(metricsAfter, 'watchpost_event_loop_utilization') ?? null;
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
    onScreen.sort((a, b) => a - b);
    fromPublish.sort((a, b) => a - b);
    const figures = {
      scenario: 'console',
      open_alerts: openAlerts,
      background_readings_per_s: backgroundRate,
      ...summary(loaded, ''),
      first_render_idle_p50_ms: Math.round(median(idle.firstRender)),
      first_screen_idle_p50_ms: Math.round(median(idle.firstScreen)),
      first_render_ratio_to_idle: Math.round((median(loaded.firstRender) / median(idle.firstRender)) * 100) / 100,
      new_alarm_p50_ms: percentile(onScreen, 50),
      new_alarm_p99_ms: percentile(onScreen, 99),
      new_alarm_max_ms: onScreen[onScreen.length - 1]!,
      new_alarm_from_publish_p50_ms: percentile(fromPublish, 50),
      new_alarm_from_publish_max_ms: fromPublish[fromPublish.length - 1]!,
      ...breakdown(loaded),
      // The firing list fetched by this process: its full view and the board's view, idle and under the load.
      full_list_bytes: answersIdle.full?.bytes ?? null,
      full_list_idle_ttfb_ms: round1(answersIdle.full?.ttfb),
      full_list_idle_total_ms: round1(answersIdle.full?.total),
      full_list_loaded_ttfb_ms: round1(answersLoaded.full?.ttfb),
      full_list_loaded_total_ms: round1(answersLoaded.full?.total),
      board_list_bytes: answersIdle.board?.bytes ?? null,
      board_list_idle_ttfb_ms: round1(answersIdle.board?.ttfb),
      board_list_idle_total_ms: round1(answersIdle.board?.total),
      board_list_loaded_ttfb_ms: round1(answersLoaded.board?.ttfb),
      board_list_loaded_total_ms: round1(answersLoaded.board?.total),
      // Watchpost's main thread while the renders ran.
      event_loop_busy: loopBusy,
      event_loop_delay_mean_ms: loopDelay.mean_ms,
      event_loop_delay_p99_le_ms: loopDelay.p99_le_ms,
      store_batch_write_mean_ms: storeWrites.mean_ms,
      renders: loaded.firstRender.length,
      idle_renders: idle.firstRender.length,
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
