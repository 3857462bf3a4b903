/**
 * The duty console in a real headless Chromium (Debian's chromium, driven by playwright-core),
 * against a whole platform: sign in, see an alarm raised over MQTT appear without a reload, open
 * it, acknowledge and dispatch it and watch its status change, keep a typed note across an
 * expired session, sign out; a viewer sees no action buttons and a forged POST with a viewer's
 * session is refused; a POST without the CSRF token is refused; unknown routes show a page.
 * Screenshots of the board, the detail and the map go to test-results/console/.
 *
 * Without /usr/bin/chromium the suite is skipped (with a message), except under CI=true, where
 * the browser must be there (.ci/run installs it).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../lib/package-info.js';
import { baseConfig, DEVICE_SECRET, OPS_TOKEN, OTHER_SECRET, startPlatform, tempDir, VIEWER_TOKEN, type RunningPlatform } from '../../test/support/platform.js';
import { startReceiver, type Receiver } from '../../test/support/receiver.js';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SCREENSHOTS = join(PACKAGE_ROOT, 'test-results', 'console');
const PIPE_SECRET = 'pipe-secret-000003';

const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing: the console's browser tests need Debian's chromium package (apt-get install chromium)`);
  console.warn(`console browser tests skipped: ${CHROMIUM} is missing (apt-get install chromium)`);
}
if (!existsSync(join(PACKAGE_ROOT, 'dist', 'console', 'index.html'))) throw new Error('dist/console is missing: run npm run build first');

/** The demo district: five assets on four streets (one without coordinates), a bridge and a pipeline rule, a department and an on-call schedule. */
function consoleConfig(webhookUrl: string) {
  const base = baseConfig({ webhookUrl, dataDir: tempDir('console-browser') });
  return {
    ...base,
    assets: [
      { ...base.assets[0]!, owner: 'lg-bridge-maint' },
      { ...base.assets[1]!, location: [114.0655, 22.6312] },
      { id: 'lg-pipe-003', type: 'pipeline', name: '龙城供水干管', street: '龙城街道', location: [114.2612, 22.7301], sensors: [{ id: 'pressure-01', metrics: ['pressure'] }] },
      { id: 'bj-building-004', type: 'building', name: '布吉老旧楼宇', street: '布吉街道', location: [114.1282, 22.6041] },
      { id: 'lg-fire-005', type: 'fire', name: '龙岗消防栓 5 号', street: '龙岗街道' },
    ],
    metrics: { ...base.metrics, pressure: { unit: 'MPa', min: 0, max: 10 } },
    devices: [...base.devices, { id: 'dau-pipe-003', secret: PIPE_SECRET, assets: ['lg-pipe-003'] }],
    rules: [
      ...base.rules,
      {
        id: 'pipe-pressure',
        name: '管网压力异常',
        match: { asset_type: 'pipeline', metric: 'pressure' },
        levels: { orange: { above: 1.2 }, yellow: { above: 1.0 } },
        plan: ['通知水务集团巡检'],
      },
    ],
    contacts: [
      { id: 'zhang-san', name: '张三', phone: '+8613800000001' },
      { id: 'li-si', name: '李四', phone: '+8613800000002' },
    ],
    departments: [{ id: 'lg-bridge-maint', name: '桥梁养护中心', kind: 'owner', notify: ['ops-hook'] }],
    schedules: [{ id: 'bridge-oncall', time_zone: 'Asia/Shanghai', rotation: { members: ['zhang-san', 'li-si'], shift: '1d', handoff: '08:30', start: '2026-01-01' } }],
  };
}

describe.skipIf(!hasChromium)('duty console in Chromium', () => {
  let receiver: Receiver;
  let p: RunningPlatform;
  let profile: string;
  let context: BrowserContext;
  let page: Page;
  let alertId: string;

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    receiver = await startReceiver();
    p = await startPlatform(consoleConfig(receiver.url));
    profile = mkdtempSync(join(tmpdir(), 'watchpost-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1400, height: 900 },
      locale: 'zh-CN',
      timezoneId: 'Asia/Shanghai',
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(15_000);
  });
  afterAll(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await p?.stop();
    await receiver?.close();
  });

  async function signIn(token: string) {
    await page.getByTestId('token').fill(token);
    await page.getByTestId('sign-in-submit').click();
    await page.getByTestId('connection').filter({ hasText: '实时' }).waitFor();
  }

  it('signs in, and an alarm raised over MQTT appears on the board without a reload', async () => {
    await page.goto(`${p.apiUrl}/console`);
    await expect(page.getByTestId('sign-in').locator('h1').textContent()).resolves.toBe('Watchpost 值班台');
    await signIn(OPS_TOKEN);
    await expect(page.getByTestId('who').textContent()).resolves.toBe('duty-officer · 值班员');
    await page.getByTestId('board-empty').waitFor();
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));

    // Two hours of readings below the thresholds, then an alarm; and an orange pipeline alert.
    const now = Date.now();
    const history = Array.from({ length: 120 }, (_, i) => ({ ts: now - (120 - i) * 60_000, values: { strain: Math.round((140 + 30 * Math.sin(i / 9) + i / 5) * 10) / 10 } }));
    const bridge = await p.connect('dau-bridge-001', DEVICE_SECRET);
    await bridge.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify(history), { qos: 1 });
    const pipe = await p.connect('dau-pipe-003', PIPE_SECRET);
    await pipe.publishAsync('telemetry/lg-pipe-003/pressure-01', JSON.stringify({ ts: now - 30_000, values: { pressure: 1.31 } }), { qos: 1 });
    await bridge.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: now, values: { strain: 312.5 } }), { qos: 1 });

    const rows = page.getByTestId('alert-row');
    await expect.poll(() => rows.count(), { timeout: 15_000 }).toBe(2);
    // Red first, then orange.
    await expect(rows.nth(0).getAttribute('class')).resolves.toContain('row-red');
    await expect(rows.nth(1).getAttribute('class')).resolves.toContain('row-orange');
    await expect(rows.nth(0).textContent()).resolves.toContain('龙岗河大桥');
    alertId = (await rows.nth(0).getAttribute('data-alert-id'))!;
    expect(alertId).toMatch(/^al_/);
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);
    await expect(page.getByTestId('counts').textContent()).resolves.toBe('红色 1橙色 1黄色 0蓝色 0');
    await page.screenshot({ path: join(SCREENSHOTS, 'board.png') });

    // Filters: by street, then back.
    await page.getByTestId('filter-street').selectOption('坂田街道');
    await page.getByTestId('board-empty').waitFor();
    await page.getByTestId('filter-street').selectOption('龙城街道');
    await expect.poll(() => rows.count()).toBe(2);
    await page.getByTestId('filter-level').selectOption('orange');
    await expect.poll(() => rows.count()).toBe(1);
    await page.getByTestId('filter-level').selectOption('');
    await page.getByTestId('filter-street').selectOption('');
  });

  it('opens the alert: plan, chart with thresholds, timeline; acknowledges and dispatches it and shows the new status', async () => {
    await page.getByTestId('alert-row').first().click();
    await page.getByTestId('detail').waitFor();
    expect(new URL(page.url()).pathname).toBe(`/console/alerts/${alertId}`);
    await expect(page.getByTestId('plan').locator('li').allTextContents()).resolves.toEqual(['通知桥梁养护单位现场核查', '必要时封闭交通']);
    await page.getByTestId('chart').locator('canvas').waitFor();
    await expect(page.getByTestId('chart').textContent()).resolves.toContain('红色 300');
    await expect(page.getByTestId('detail-state').textContent()).resolves.toBe('报警中 · 待处理');

    await page.getByTestId('note').fill('已电话通知养护单位');
    await page.getByTestId('action-ack').click();
    await page.getByTestId('detail-state').filter({ hasText: '已确认收到 · 已签收' }).waitFor();
    await page.getByTestId('timeline').locator('li[data-type="acknowledged"]').filter({ hasText: '已电话通知养护单位' }).waitFor();
    await expect(page.getByTestId('note').inputValue()).resolves.toBe('');
    expect((await p.api('GET', `/api/v1/alerts/${alertId}`)).body).toMatchObject({ state: 'acknowledged', acknowledged_by: 'duty-officer' });

    await page.getByTestId('dispatch-department').fill('lg-bridge-maint');
    await page.getByTestId('dispatch-due').fill('2h');
    await page.getByTestId('action-dispatch').click();
    await page.getByTestId('detail-state').filter({ hasText: '已确认收到 · 已派单' }).waitFor();
    expect((await p.api('GET', `/api/v1/alerts/${alertId}`)).body.case).toMatchObject({ status: 'dispatched', department: 'lg-bridge-maint' });
    await page.screenshot({ path: join(SCREENSHOTS, 'detail.png'), fullPage: true });

    // An API refusal shows its message.
    await page.getByTestId('action-verify').waitFor({ state: 'detached' });
  });

  it("shows the map, work orders with today's disposal figures, who is on call and the devices", async () => {
    await page.getByTestId('nav-map').click();
    await page.getByTestId('map').waitFor();
    await expect(page.getByTestId('map').getAttribute('data-tiles')).resolves.toBe('no');
    await expect.poll(() => page.getByTestId('map-asset').count()).toBe(4);
    await expect(page.locator('[data-asset-id="lg-bridge-001"]').getAttribute('class')).resolves.toBe('asset asset-red');
    await expect(page.locator('[data-asset-id="lg-pipe-003"]').getAttribute('class')).resolves.toBe('asset asset-orange');
    await expect(page.locator('.street-label').allTextContents()).resolves.toEqual(expect.arrayContaining(['龙城街道', '坂田街道', '布吉街道']));
    await expect(page.locator('main').textContent()).resolves.toContain('龙岗消防栓 5 号');
    await page.screenshot({ path: join(SCREENSHOTS, 'map.png') });

    await page.getByTestId('nav-work-orders').click();
    await page.getByTestId('wo-department').waitFor();
    await expect(page.getByTestId('wo-department').textContent()).resolves.toContain('桥梁养护中心');
    // Today's disposal loop: the two alarms, the red one acknowledged and dispatched, none closed or dismissed.
    const panel = page.getByTestId('today-report');
    await panel.waitFor();
    const range = { from: Number(await panel.getAttribute('data-from')), to: Number(await panel.getAttribute('data-to')) };
    expect(range.to - range.from).toBe(86_400_000); // Asia/Shanghai keeps no daylight saving time
    expect(new Date(range.from).toLocaleString('en-GB', { timeZone: 'Asia/Shanghai', hour: '2-digit', minute: '2-digit', hour12: false })).toBe('00:00');
    // The cases are the alarms that started on the panel's day: counted from their start times, as the
    // server counts them, so a run that crosses midnight in Shanghai (16:00 UTC) expects what that day holds.
    const alarms = (await p.api('GET', '/api/v1/alerts')).body.alerts as Array<{ id: string; started_at: string }>;
    expect(alarms).toHaveLength(2);
    const onTheDay = alarms.filter((a) => Date.parse(a.started_at) >= range.from && Date.parse(a.started_at) < range.to).map((a) => a.id);
    const today = (await p.api('GET', `/api/v1/report?from=${range.from}&to=${range.to}`)).body as { total: { cases: number; stages: { ack: { median_s: number | null } } } };
    expect(today.total.cases).toBe(onTheDay.length);
    const ackSeconds = today.total.stages.ack.median_s;
    // Only the red alarm was acknowledged: the day has an ack time exactly when that alarm started on it.
    expect(ackSeconds === null ? 'none' : ackSeconds > 0).toBe(onTheDay.includes(alertId) ? true : 'none');
    await expect(panel.locator('h3').textContent()).resolves.toBe('今日处置');
    await expect(page.getByTestId('report-cases').textContent()).resolves.toBe(String(onTheDay.length));
    await expect(page.getByTestId('report-ack').getAttribute('data-value')).resolves.toBe(ackSeconds === null ? '' : String(ackSeconds));
    await expect(page.getByTestId('report-ack').textContent()).resolves.toMatch(ackSeconds === null ? /^—$/ : /^(\d+(\.\d)?s|\d+m \d{2}s)$/);
    await expect(page.getByTestId('report-close').textContent()).resolves.toBe('—');
    await expect(page.getByTestId('report-overdue').textContent()).resolves.toBe('0');
    await expect(page.getByTestId('report-false-alarm').textContent()).resolves.toBe(onTheDay.length === 0 ? '—' : '0.0%');
    await page.getByTestId('nav-oncall').click();
    await page.getByTestId('oncall').waitFor();
    await expect(page.getByTestId('oncall').textContent()).resolves.toMatch(/当前值班： (张三|李四) \(/);
    const slope = await p.connect('dau-slope-002', OTHER_SECRET);
    await slope.publishAsync('status/dau-slope-002', 'online', { qos: 1, retain: true });
    await page.getByTestId('nav-devices').click();
    await page.getByTestId('devices').waitFor();
    await expect(page.getByTestId('nav-devices').textContent()).resolves.toBe('设备');
    const slopeRow = page.locator('[data-device-id="dau-slope-002"]');
    await expect(slopeRow.getByTestId('device-status').textContent()).resolves.toBe('● 在线');
    await expect(slopeRow.getByTestId('device-status').getAttribute('class')).resolves.toBe('device-online');
    await expect(slopeRow.getByTestId('device-assets').textContent()).resolves.toBe('bt-slope-002');
    await expect(slopeRow.getByTestId('device-last-seen').textContent()).resolves.toMatch(/^\d{4}\/\d{1,2}\/\d{1,2} \d{2}:\d{2}:\d{2}/); // local time (formatTime)
    // A device that never published a status/ message: unknown, though its readings were seen.
    await expect(page.locator('[data-device-id="dau-pipe-003"]').getByTestId('device-status').textContent()).resolves.toBe('● 未知');
    await slope.endAsync();
  });

  it('an expired session returns to sign-in and keeps the typed note; unknown routes show a page; English on request', async () => {
    await page.goto(`${p.apiUrl}/console/alerts/${alertId}`);
    await page.getByTestId('detail').waitFor();
    await page.getByTestId('note').fill('现场封闭一条车道');
    await context.clearCookies(); // as if the session had expired
    await page.getByTestId('action-close').click();
    await page.getByTestId('sign-in').waitFor();
    await signIn(OPS_TOKEN);
    await page.getByTestId('detail').waitFor();
    await expect(page.getByTestId('note').inputValue()).resolves.toBe('现场封闭一条车道');

    await page.goto(`${p.apiUrl}/console/no/such/page`);
    await page.getByTestId('not-found').waitFor();
    await expect(page.getByTestId('not-found').textContent()).resolves.toContain('/console/no/such/page');
    await page.getByTestId('language').click();
    await expect(page.getByTestId('nav-board').textContent()).resolves.toBe('Alert board');
    await expect(page.getByTestId('not-found').locator('h2').textContent()).resolves.toBe('Page not found');
    await page.getByTestId('language').click();
    await expect(page.getByTestId('nav-board').textContent()).resolves.toBe('报警看板');
  });

  it('refuses a POST without the CSRF token; signs out', async () => {
    const refused = await page.evaluate(async (id) => {
      const res = await fetch(`/api/v1/alerts/${id}/resolve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      return { status: res.status, body: (await res.json()) as unknown };
    }, alertId);
    expect(refused).toEqual({ status: 403, body: { error: 'csrf_token_invalid', message: 'a request signed in by the console cookie needs its X-CSRF-Token header' } });

    await page.getByTestId('sign-out').click();
    await page.getByTestId('sign-in').waitFor();
    expect((await context.cookies()).filter((c) => c.name === 'watchpost_session')).toEqual([]);
  });

  it("a viewer sees no action buttons, and a forged POST with the viewer's session is refused", async () => {
    await page.goto(`${p.apiUrl}/console/alerts/${alertId}`);
    await signIn(VIEWER_TOKEN);
    await page.getByTestId('detail').waitFor();
    await page.getByTestId('read-only').waitFor();
    await expect(page.getByTestId('actions').count()).resolves.toBe(0);
    await expect(page.locator('[data-testid^="action-"]').count()).resolves.toBe(0);
    const forged = await page.evaluate(async (id) => {
      const session = (await (await fetch('/console/session')).json()) as { csrf_token: string };
      const res = await fetch(`/api/v1/alerts/${id}/close`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrf_token },
        body: '{"note":"forged"}',
      });
      return { status: res.status, body: (await res.json()) as unknown };
    }, alertId);
    expect(forged).toEqual({ status: 403, body: { error: 'forbidden', message: 'this needs the operator role' } });
    expect((await p.api('GET', `/api/v1/alerts/${alertId}`)).body.case.status).toBe('dispatched');
  });

  it('rings for a new red alarm (WebAudio), and not once muted', async () => {
    // A stand-in AudioContext that counts the beeps' oscillators.
    await context.addInitScript(() => {
      const w = window as unknown as { beeps: number; AudioContext: unknown };
      w.beeps = 0;
      w.AudioContext = class {
        state = 'running';
        currentTime = 0;
        destination = {};
        createOscillator() {
          return { type: '', frequency: { value: 0 }, connect: (next: unknown) => next, start: () => w.beeps++, stop: () => undefined };
        }
        createGain() {
          return { gain: { setValueAtTime: () => undefined }, connect: (next: unknown) => next };
        }
        resume() {
          return Promise.resolve();
        }
      };
    });
    await page.goto(`${p.apiUrl}/console`);
    await page.getByTestId('connection').filter({ hasText: '实时' }).waitFor();
    await page.locator('main').click({ position: { x: 5, y: 5 } }); // a gesture: browsers start sound only after one
    const bridge = await p.connect('dau-bridge-001', DEVICE_SECRET);
    const alarm = async (ts: number) => {
      expect((await p.api('POST', `/api/v1/alerts/${alertId}/resolve`, { note: 'test' })).status).toBe(200);
      // Back below the thresholds first: the rule fires anew only after its condition has cleared.
      await bridge.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts, values: { strain: 100 } }), { qos: 1 });
      await bridge.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: ts + 1, values: { strain: 330 } }), { qos: 1 });
      const firing = async () => ((await p.api('GET', '/api/v1/alerts?state=firing&asset_id=lg-bridge-001')).body.alerts as Array<{ id: string }>)[0]?.id;
      await expect.poll(firing).toMatch(/^al_/);
      const next = (await firing())!;
      await page.locator(`[data-alert-id="${next}"]`).waitFor();
      return next;
    };
    alertId = await alarm(Date.now());
    await expect.poll(() => page.evaluate(() => (window as unknown as { beeps: number }).beeps)).toBe(3);
    await page.getByTestId('mute').click();
    await expect(page.getByTestId('mute').textContent()).resolves.toBe('取消静音');
    alertId = await alarm(Date.now() + 10);
    expect(await page.evaluate(() => (window as unknown as { beeps: number }).beeps)).toBe(3);
    await page.getByTestId('mute').click();
  });
});

/** A 1×1 PNG: what a tile server answers here. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');

describe.skipIf(!hasChromium)('duty console map with console.map_tiles', () => {
  let receiver: Receiver;
  let tiles: Server;
  const requested: string[] = [];
  let p: RunningPlatform;
  let profile: string;
  let context: BrowserContext;

  beforeAll(async () => {
    tiles = createServer((req, res) => {
      requested.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'image/png' }).end(PNG);
    });
    await new Promise<void>((resolve) => tiles.listen(0, '127.0.0.1', resolve));
    const tileUrl = `http://127.0.0.1:${(tiles.address() as { port: number }).port}/tiles/{z}/{x}/{y}.png`;
    receiver = await startReceiver();
    p = await startPlatform({ ...consoleConfig(receiver.url), console: { map_tiles: tileUrl, map_attribution: '© 龙岗区规划和自然资源局' } });
    profile = mkdtempSync(join(tmpdir(), 'watchpost-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1400, height: 900 }, locale: 'zh-CN' });
  });
  afterAll(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await p?.stop();
    await receiver?.close();
    await new Promise((resolve) => tiles?.close(resolve));
  });

  it("draws the tiles of the template under the assets, with the attribution, allowed by the page's CSP", async () => {
    const page = context.pages()[0] ?? (await context.newPage());
    const csp: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) csp.push(m.text());
    });
    await page.goto(`${p.apiUrl}/console/map`);
    await page.getByTestId('token').fill(VIEWER_TOKEN);
    await page.getByTestId('sign-in-submit').click();
    await page.getByTestId('map').waitFor();
    await expect(page.getByTestId('map').getAttribute('data-tiles')).resolves.toBe('yes');
    const images = await page.locator('image.tile').count();
    expect(images).toBeGreaterThan(0);
    await expect.poll(() => requested.length, { timeout: 10_000 }).toBe(images);
    for (const url of requested) expect(url).toMatch(/^\/tiles\/\d{1,2}\/\d+\/\d+\.png$/);
    // Longgang (114.25 E, 22.72 N) at the chosen zoom: x and y of its tiles.
    const [z, x, y] = requested[0]!.match(/\d+/g)!.map(Number) as [number, number, number];
    const n = 2 ** z;
    expect(x).toBeGreaterThanOrEqual(Math.floor(((114.0 + 180) / 360) * n) - 1);
    expect(x).toBeLessThanOrEqual(Math.floor(((114.3 + 180) / 360) * n) + 1);
    expect(y).toBeGreaterThan(n / 4);
    expect(y).toBeLessThan(n / 2);
    await expect(page.locator('figure.map figcaption').textContent()).resolves.toBe('© 龙岗区规划和自然资源局');
    await expect.poll(() => page.getByTestId('map-asset').count()).toBe(4);
    expect(csp).toEqual([]);
  });
});
