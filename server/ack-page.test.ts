/**
 * The acknowledgement page and the silences API through fastify's inject, on a real alert
 * service (temporary alerts.db, scripted channels).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseEventBody } from '../alerts/event-body.js';
import { silentLogger } from '../lib/logger.js';
import { MIN, ruleEvent, startHarness, type Harness } from '../test/support/alerts.js';
import { openApiMismatches, type OpenApiDocument } from '../test/support/openapi.js';
import { zonedTime, type AckLinksPort } from './ack-page.js';
import { buildApi } from './api.js';

const OPERATOR = 'operator-token-0123456789';
const VIEWER = 'viewer-token-0123456789ab';
const T0 = Date.UTC(2025, 10, 28, 2, 0, 0);

/** The alert service's links, with the metric catalogue's unit for strain. */
function links(h: Harness): AckLinksPort {
  return {
    ackLink: (token) => h.service.ackLink(token),
    acknowledgeByLink: (token, note) => h.service.acknowledgeByLink(token, note),
    unitOf: (metric) => (metric === 'strain' ? 'µε' : ''),
  };
}

function api(h: Harness) {
  return buildApi({
    config: {
      host: '127.0.0.1',
      port: 0,
      public_url: 'https://watchpost.example.org',
      max_body_bytes: 65536,
      tokens: [
        { name: 'duty-officer', token: OPERATOR, role: 'operator' },
        { name: 'screen', token: VIEWER, role: 'viewer' },
      ],
    },
    logger: silentLogger(),
    alerts: h.service,
    assets: () => [],
    devices: () => [],
    rules: () => ({ rules: [] }),
    health: () => ({ status: 'ok' }),
    metrics: () => '',
    silences: h.service,
    ackLinks: links(h),
  });
}

type Answer = { statusCode: number; json(): unknown };

/** The answer is what GET /openapi.json says the route answers with that status. */
async function expectDocumented(app: ReturnType<typeof buildApi>, method: string, url: string, res: Answer): Promise<void> {
  const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<OpenApiDocument>();
  expect(openApiMismatches(doc, method, url, res.statusCode, res.json())).toEqual([]);
}

describe('acknowledgement page', () => {
  let h: Harness;
  let app: ReturnType<typeof buildApi>;

  beforeEach(async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(T0);
    h = startHarness({ ackLinkTtlMs: 60 * MIN });
    app = api(h);
    await app.ready();
  });

  afterEach(async () => {
    await app.close();
    await h.close();
    vi.useRealTimers();
  });

  async function firstLink(): Promise<string> {
    await h.service.handle([ruleEvent('red', 312.5)]);
    await vi.waitFor(() => expect(h.sent.length).toBeGreaterThan(0));
    const url = parseEventBody(h.sent[0]!.body).alert.ack_url;
    expect(url.startsWith('https://watchpost.example.org/ack/v1~')).toBe(true);
    return new URL(url).pathname;
  }

  it('shows the alert and its plan with one button, acknowledges once, and refuses the replay', async () => {
    const path = await firstLink();
    const page = await app.inject({ method: 'GET', url: path });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.headers['content-security-policy']).toBe("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    expect(page.body).toContain('<span class="badge" style="background:#d93025">红色预警</span><h1>主梁应变超限</h1><p>龙岗河大桥 strain-01 应变 312.5µε，超过红色阈值 300</p>');
    expect(page.body).toContain(
      '<dl><dt>资产</dt><dd>龙岗河大桥 (lg-bridge-001)</dd><dt>街道</dt><dd>龙城街道</dd><dt>测点</dt><dd>strain-01 · strain</dd>' +
        '<dt>读数</dt><dd>312.5 µε</dd><dt>阈值</dt><dd>300 µε</dd><dt>开始时间</dt><dd>2025-11-28 10:00:00 (UTC+8)</dd><dt>状态</dt><dd>告警中，未确认</dd><dt>已通知至</dt><dd>第 1 级</dd></dl>',
    );
    expect(page.body).toContain('<h2>处置预案</h2><ol><li>通知桥梁养护单位现场核查</li></ol>');
    expect(page.body).toContain('<form class="card" method="post">');
    expect(page.body).not.toMatch(/<script|https?:\/\/(?!watchpost)/);

    const ack = await app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'note=%E5%B7%B2%E5%88%B0%E7%8E%B0%E5%9C%BA' });
    expect(ack.statusCode).toBe(200);
    expect(ack.body).toContain('<h1>已确认</h1><p>告警已确认，逐级上报已停止；已通知的人员会收到确认消息。</p>');
    const [alert] = h.service.list();
    expect(alert).toMatchObject({ state: 'acknowledged', acknowledged_by: 'link:ops-hook' });
    // The API's views of the same alert, as documented.
    const viewer = { authorization: `Bearer ${VIEWER}` };
    for (const url of ['/api/v1/alerts', `/api/v1/alerts/${alert!.id}`]) {
      const res = await app.inject({ method: 'GET', url, headers: viewer });
      expect(res.statusCode).toBe(200);
      await expectDocumented(app, 'GET', url, res);
    }
    expect(h.service.get(alert!.id).timeline.find((e) => e.type === 'acknowledged')).toMatchObject({ by: 'link:ops-hook', note: '已到现场' });

    const replay = await app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'note=' });
    expect(replay.statusCode).toBe(409);
    expect(replay.body).toContain('<h1>链接已使用</h1>');
    const again = await app.inject({ method: 'GET', url: path });
    expect(again.statusCode).toBe(409);
    expect(again.body).not.toContain('<form');
  });

  it('shows the notes already made on the alert, with who made them and when', async () => {
    const path = await firstLink();
    const [alert] = h.service.list();
    vi.setSystemTime(T0 + 5 * MIN);
    h.service.acknowledge(alert!.id, { by: 'duty-officer', note: '已通知养护单位 <现场核查>\n预计 30 分钟到达' });
    const page = await app.inject({ method: 'GET', url: path });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<dt>状态</dt><dd>已确认（由 duty-officer 于 2025-11-28 10:05:00 (UTC+8) 确认）</dd>');
    expect(page.body).toContain(
      '<h2>记录</h2><ul><li><small>2025-11-28 10:00:00 (UTC+8)</small> 告警 · 红色预警</li>' +
        '<li><small>2025-11-28 10:05:00 (UTC+8)</small> 已确认 · 红色预警 · duty-officer<div class="note">已通知养护单位 &lt;现场核查&gt;\n预计 30 分钟到达</div></li></ul>',
    );
    expect(page.body).not.toContain('<form');
  });

  it('refuses expired and tampered links, and needs no other credential', async () => {
    const path = await firstLink();
    const tampered = path.replace(/~zh~/, '~en~');
    const bad = await app.inject({ method: 'GET', url: tampered });
    expect(bad.statusCode).toBe(404);
    expect(bad.body).toContain('<h1>链接无效</h1>');
    expect((await app.inject({ method: 'POST', url: '/ack/not-a-token' })).statusCode).toBe(404);
    vi.setSystemTime(T0 + 61 * MIN);
    const expired = await app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'note=x' });
    expect(expired.statusCode).toBe(410);
    expect(expired.body).toContain('<h1>链接已过期</h1>');
    expect(h.service.list()[0]!.state).toBe('firing');
  });

  it('says so when the alert is already resolved', async () => {
    const path = await firstLink();
    h.service.resolve(h.service.list()[0]!.id, { by: 'duty-officer' });
    const res = await app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: '' });
    expect(res.statusCode).toBe(409);
    expect(res.body).toContain('<h1>告警已解除</h1>');
  });
});

describe('zonedTime', () => {
  it('shows the time in the zone with its UTC offset', () => {
    expect(zonedTime('2026-12-01T00:30:00Z')).toBe('2026-12-01 08:30:00 (UTC+8)');
    expect(zonedTime('2026-12-01T00:30:00Z', 'UTC')).toBe('2026-12-01 00:30:00 (UTC)');
    expect(zonedTime('2026-07-01T00:30:00Z', 'Asia/Kolkata')).toBe('2026-07-01 06:00:00 (UTC+5:30)');
    expect(zonedTime('not a time')).toBe('not a time');
  });
});

describe('silences API', () => {
  let h: Harness;
  let app: ReturnType<typeof buildApi>;

  beforeEach(async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(T0);
    h = startHarness();
    app = api(h);
    await app.ready();
  });

  afterEach(async () => {
    await app.close();
    await h.close();
    vi.useRealTimers();
  });

  const auth = (token = OPERATOR) => ({ authorization: `Bearer ${token}` });
  const asDocumented = (method: string, url: string, res: Answer) => expectDocumented(app, method, url, res);

  it('creates, lists and deletes silences as an operator', async () => {
    const body = { matchers: { asset_id: 'lg-bridge-001', level: ['yellow', 'orange'] }, ends_at: '2025-11-28T12:00:00+08:00', reason: '桥梁检修，封闭施工' };
    const created = await app.inject({ method: 'POST', url: '/api/v1/silences', headers: auth(), payload: body });
    expect(created.statusCode).toBe(201);
    const silence = created.json<{ id: string }>();
    expect(silence).toEqual({
      id: silence.id,
      matchers: { asset_id: ['lg-bridge-001'], level: ['yellow', 'orange'] },
      starts_at: '2025-11-28T02:00:00.000Z',
      ends_at: '2025-11-28T04:00:00.000Z',
      reason: '桥梁检修，封闭施工',
      created_by: 'duty-officer',
      created_at: '2025-11-28T02:00:00.000Z',
      state: 'active',
    });
    await asDocumented('POST', '/api/v1/silences', created);
    const list = await app.inject({ method: 'GET', url: '/api/v1/silences', headers: auth() });
    expect(list.json()).toEqual({ silences: [silence] });
    await asDocumented('GET', '/api/v1/silences', list);
    expect((await app.inject({ method: 'GET', url: '/api/v1/silences?state=pending', headers: auth() })).json()).toEqual({ silences: [] });
    const del = await app.inject({ method: 'DELETE', url: `/api/v1/silences/${silence.id}`, headers: auth() });
    expect(del.statusCode).toBe(204);
    expect((await app.inject({ method: 'GET', url: '/api/v1/silences', headers: auth() })).json()).toEqual({ silences: [] });
    const gone = await app.inject({ method: 'DELETE', url: `/api/v1/silences/${silence.id}`, headers: auth() });
    expect(gone.statusCode).toBe(404);
    expect(gone.json()).toEqual({ error: 'silence_not_found', message: `no silence with id "${silence.id}"` });
    await asDocumented('DELETE', `/api/v1/silences/${silence.id}`, gone);
  });

  it('refuses viewers, anonymous callers and bad bodies with a clear error', async () => {
    expect((await app.inject({ method: 'GET', url: '/api/v1/silences' })).statusCode).toBe(401);
    const viewer = await app.inject({ method: 'GET', url: '/api/v1/silences', headers: auth(VIEWER) });
    expect(viewer.statusCode).toBe(403);
    expect(viewer.json()).toEqual({ error: 'forbidden', message: 'this needs the operator role' });
    const bad = await app.inject({ method: 'POST', url: '/api/v1/silences', headers: auth(), payload: { matchers: {}, ends_at: '2025-11-28T12:00:00+08:00', reason: 'x' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toEqual({ error: 'invalid_request', message: 'body.matchers: give at least one of asset_id, rule_id, street, level, asset_type' });
    await asDocumented('POST', '/api/v1/silences', bad);
    await asDocumented('GET', '/api/v1/silences', viewer);
    const badId = await app.inject({ method: 'DELETE', url: '/api/v1/silences/nope', headers: auth() });
    expect(badId.json()).toEqual({ error: 'bad_request', message: 'path.id: not a silence id' });
    const badState = await app.inject({ method: 'GET', url: '/api/v1/silences?state=old', headers: auth() });
    expect(badState.statusCode).toBe(400);
  });
});
