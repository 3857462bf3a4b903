/**
 * The console's server side end to end, without a browser: sign-in into a session cookie, the
 * API taking the cookie (with the CSRF token on changes, refused without it), roles enforced for
 * sessions as for tokens, sign-out, and GET /api/v1/stream replaying what a client missed when it
 * reconnects with Last-Event-ID.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchOpenApi, openApiMismatches } from '../../test/support/openapi.js';
import { baseConfig, DEVICE_SECRET, OPS_TOKEN, startPlatform, tempDir, VIEWER_TOKEN, type RunningPlatform } from '../../test/support/platform.js';
import { startReceiver, type Receiver } from '../../test/support/receiver.js';
import { openStream } from '../../test/support/sse.js';

const T0 = Date.parse('2025-11-28T02:00:00.000Z');

interface SignedIn {
  cookie: string;
  csrf: string;
  setCookie: string;
  body: Record<string, unknown>;
}

describe('console sessions and stream', () => {
  let receiver: Receiver;
  let p: RunningPlatform;

  beforeAll(async () => {
    receiver = await startReceiver();
    p = await startPlatform(baseConfig({ webhookUrl: receiver.url, dataDir: tempDir('console-api') }));
  });
  afterAll(async () => {
    await p?.stop();
    await receiver?.close();
  });

  async function signIn(token: string): Promise<SignedIn> {
    const res = await fetch(`${p.apiUrl}/console/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
    expect(res.status).toBe(200);
    const setCookie = res.headers.get('set-cookie')!;
    const body = (await res.json()) as Record<string, unknown>;
    return { cookie: setCookie.split(';')[0]!, csrf: body.csrf_token as string, setCookie, body };
  }

  async function raise(strain: number, ts: number) {
    const device = await p.connect('dau-bridge-001', DEVICE_SECRET);
    await device.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts, values: { strain } }), { qos: 1 });
    await device.endAsync();
  }

  it('signs in into an HttpOnly, SameSite=Strict cookie, refuses unknown tokens, and answers the session with its CSRF token', async () => {
    const bad = await fetch(`${p.apiUrl}/console/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: 'not-a-token-0000000' }) });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('set-cookie')).toBeNull();
    expect(await bad.json()).toEqual({ error: 'unauthorized', message: 'unknown token' });

    const s = await signIn(OPS_TOKEN);
    expect(s.setCookie).toMatch(/^watchpost_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=86400$/);
    expect(s.body).toMatchObject({ name: 'duty-officer', role: 'operator', idle_timeout_s: 43200, map_tiles: null, map_attribution: null });
    expect(s.csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(JSON.stringify(s.body)).not.toContain(OPS_TOKEN);

    const again = await fetch(`${p.apiUrl}/console/session`, { headers: { cookie: s.cookie } });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { csrf_token: string }).csrf_token).toBe(s.csrf);
    expect((await fetch(`${p.apiUrl}/console/session`)).status).toBe(401);
  });

  it('takes the cookie on the API; changes need the CSRF token; a viewer session is refused the operator actions', async () => {
    await raise(312, T0);
    const [firing] = await receiver.waitForRequests(1);
    const id = (JSON.parse(firing!.body) as { alert: { id: string } }).alert.id;

    const operator = await signIn(OPS_TOKEN);
    const list = await fetch(`${p.apiUrl}/api/v1/alerts`, { headers: { cookie: operator.cookie } });
    expect(list.status).toBe(200);
    expect(((await list.json()) as { alerts: Array<{ id: string }> }).alerts.map((a) => a.id)).toEqual([id]);

    const post = (cookie: string, headers: Record<string, string> = {}) =>
      fetch(`${p.apiUrl}/api/v1/alerts/${id}/ack`, { method: 'POST', headers: { cookie, 'content-type': 'application/json', ...headers }, body: JSON.stringify({ note: '已到场' }) });

    const noCsrf = await post(operator.cookie);
    expect(noCsrf.status).toBe(403);
    expect(await noCsrf.json()).toEqual({ error: 'csrf_token_invalid', message: 'a request signed in by the console cookie needs its X-CSRF-Token header' });
    const wrongCsrf = await post(operator.cookie, { 'x-csrf-token': 'x'.repeat(43) });
    expect(wrongCsrf.status).toBe(403);

    const viewer = await signIn(VIEWER_TOKEN);
    expect(viewer.body.role).toBe('viewer');
    const forged = await post(viewer.cookie, { 'x-csrf-token': viewer.csrf });
    expect(forged.status).toBe(403);
    expect(await forged.json()).toEqual({ error: 'forbidden', message: 'this needs the operator role' });
    // An operator's CSRF token does not make a viewer's session an operator.
    expect((await post(viewer.cookie, { 'x-csrf-token': operator.csrf })).status).toBe(403);
    expect((await p.api('GET', `/api/v1/alerts/${id}`)).body.state).toBe('firing');

    const ok = await post(operator.cookie, { 'x-csrf-token': operator.csrf });
    expect(ok.status).toBe(200);
    const detail = await p.api('GET', `/api/v1/alerts/${id}`);
    expect(detail.body).toMatchObject({ state: 'acknowledged', acknowledged_by: 'duty-officer' });

    // Bearer requests need no CSRF token, and a Bearer header wins over a cookie.
    expect(
      (
        await fetch(`${p.apiUrl}/api/v1/alerts/${id}/resolve`, {
          method: 'POST',
          headers: { authorization: `Bearer ${VIEWER_TOKEN}`, cookie: operator.cookie, 'x-csrf-token': operator.csrf, 'content-type': 'application/json' },
          body: '{}',
        })
      ).status,
    ).toBe(403);
  });

  it('signs out: the session ends, and sign-out itself needs the CSRF token', async () => {
    const s = await signIn(OPS_TOKEN);
    expect((await fetch(`${p.apiUrl}/console/session`, { method: 'DELETE', headers: { cookie: s.cookie } })).status).toBe(403);
    const out = await fetch(`${p.apiUrl}/console/session`, { method: 'DELETE', headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toBe('watchpost_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0');
    const after = await fetch(`${p.apiUrl}/api/v1/alerts`, { headers: { cookie: s.cookie } });
    expect(after.status).toBe(401);
    expect(await after.json()).toEqual({ error: 'session_expired', message: 'the console session has expired or ended; sign in again' });
  });

  it('streams alert events with increasing ids; a reconnect with Last-Event-ID is sent exactly what it missed', async () => {
    const viewer = await signIn(VIEWER_TOKEN);
    expect((await fetch(`${p.apiUrl}/api/v1/stream`)).status).toBe(401);
    const head = await fetch(`${p.apiUrl}/api/v1/stream`, { method: 'HEAD', headers: { cookie: viewer.cookie } });
    expect([head.status, head.headers.get('content-type')]).toEqual([200, 'text/event-stream; charset=utf-8']);
    expect((p.platform as unknown as { console: { stream: { clientCount(): number } } }).console.stream.clientCount()).toBe(0);
    const first = await openStream(`${p.apiUrl}/api/v1/stream`, { cookie: viewer.cookie });
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const ready = await first.waitFor((e) => e.event === 'ready');
    const since = Number(ready.id);

    // A second asset's alarm: the slope has no rule, so raise on the bridge again after resolving.
    const id = ((await p.api('GET', '/api/v1/alerts?state=acknowledged')).body.alerts as Array<{ id: string }>)[0]!.id;
    expect((await p.api('POST', `/api/v1/alerts/${id}/resolve`, { note: 'test' })).status).toBe(200);
    const resolved = await first.waitFor((e) => e.event === 'alert' && (JSON.parse(e.data) as { event: string }).event === 'resolved');
    first.close();

    // Missed while disconnected: a new alert firing at orange, then raised to red (a Bearer client, connected throughout, sees them live).
    const bearer = await openStream(`${p.apiUrl}/api/v1/stream`, { authorization: `Bearer ${VIEWER_TOKEN}` });
    await bearer.waitFor((e) => e.event === 'ready');
    await raise(260, T0 + 60_000);
    await raise(320, T0 + 61_000);
    await bearer.waitFor((e) => e.event === 'alert' && (JSON.parse(e.data) as { event: string }).event === 'level_raised');
    bearer.close();

    const second = await openStream(`${p.apiUrl}/api/v1/stream`, { cookie: viewer.cookie, 'last-event-id': resolved.id! });
    await second.waitFor((e) => e.event === 'ready');
    const replayed = second.events
      .filter((e) => e.event === 'alert')
      .map((e) => ({
        id: Number(e.id),
        event: (JSON.parse(e.data) as { event: string; alert: { level: string } }).event,
        level: (JSON.parse(e.data) as { alert: { level: string } }).alert.level,
      }));
    expect(replayed).toEqual([
      { id: Number(resolved.id) + 1, event: 'firing', level: 'orange' },
      { id: Number(resolved.id) + 2, event: 'level_raised', level: 'red' },
    ]);
    expect(Number(resolved.id)).toBeGreaterThan(since);
    second.close();

    // An id from before what is kept (or of an earlier process) gets a reset.
    const stale = await openStream(`${p.apiUrl}/api/v1/stream`, { cookie: viewer.cookie, 'last-event-id': '12' });
    const reset = await stale.waitFor((e) => e.event === 'reset');
    expect(stale.events.filter((e) => e.event === 'alert')).toEqual([]);
    expect(reset.id).toBe(String(Number(resolved.id) + 2));
    stale.close();
  });

  it('answers the board view with the stream event id it was read at, and the stream goes on from that id', async () => {
    const viewer = await signIn(VIEWER_TOKEN);
    const get = (path: string, headers: Record<string, string> = {}) => fetch(`${p.apiUrl}${path}`, { headers: { cookie: viewer.cookie, ...headers } });
    const full = await get('/api/v1/alerts?state=firing');
    const [a] = ((await full.json()) as { alerts: Array<Record<string, unknown>> }).alerts;
    const board = await get('/api/v1/alerts?state=firing&view=board');
    expect(board.status).toBe(200);
    const boardBody = (await board.json()) as { alerts: unknown[] };
    expect(boardBody.alerts).toEqual([
      {
        id: a!.id,
        rule_name: '主梁应变超限',
        level: 'red',
        state: 'firing',
        asset_id: 'lg-bridge-001',
        asset_name: a!.asset_name,
        street: a!.street,
        sensor_id: 'strain-01',
        metric: 'strain',
        value: 320,
        started_at: a!.started_at,
        case: { status: 'new', department: null },
      },
    ]);
    const latest = (p.platform as unknown as { console: { stream: { latestId(): number } } }).console.stream.latestId();
    expect([full.headers.get('x-stream-event-id'), board.headers.get('x-stream-event-id')]).toEqual([String(latest), String(latest)]);

    // A change after the list was read: the stream opened from the list's id sends it, then `ready`.
    expect((await p.api('POST', `/api/v1/alerts/${String(a!.id)}/ack`, { note: '核查中' })).status).toBe(200);
    const after = await openStream(`${p.apiUrl}/api/v1/stream?last_event_id=${latest}`, { cookie: viewer.cookie });
    await after.waitFor((e) => e.event === 'ready');
    const seen = (s: { events: Array<{ id?: string; event: string; data: string }> }) =>
      s.events.map((e) => [Number(e.id), e.event, e.event === 'alert' ? (JSON.parse(e.data) as { event: string }).event : null]);
    expect(seen(after)).toEqual([
      [latest + 1, 'alert', 'acknowledged'],
      [latest + 1, 'ready', null],
    ]);
    after.close();
    // Last-Event-ID (a reconnect) wins over the query.
    const reconnect = await openStream(`${p.apiUrl}/api/v1/stream?last_event_id=${latest}`, { cookie: viewer.cookie, 'last-event-id': String(latest + 1) });
    await reconnect.waitFor((e) => e.event === 'ready');
    expect(seen(reconnect)).toEqual([[latest + 1, 'ready', null]]);
    reconnect.close();

    const badId = await get('/api/v1/stream?last_event_id=12a');
    expect([badId.status, await badId.json()]).toEqual([400, { error: 'bad_request', message: 'query.last_event_id: not an event id' }]);
    const badView = await p.api('GET', '/api/v1/alerts?view=compact', undefined, VIEWER_TOKEN);
    expect([badView.status, badView.body.error]).toEqual([400, 'bad_request']);
    const doc = await fetchOpenApi(p.apiUrl);
    expect(openApiMismatches(doc, 'GET', '/api/v1/alerts', 200, boardBody)).toEqual([]);
  });

  it('answers a series of readings, and the new routes are in /openapi.json', async () => {
    const q = new URLSearchParams({ asset_id: 'lg-bridge-001', sensor_id: 'strain-01', metric: 'strain', from: String(T0 - 1000), to: String(T0 + 120_000) });
    const res = await fetch(`${p.apiUrl}/api/v1/series?${q.toString()}`, { headers: { authorization: `Bearer ${VIEWER_TOKEN}` } });
    expect(res.status).toBe(200);
    // The embedded store writes in batches: wait for what is acknowledged to be readable.
    let body = (await res.json()) as { points: Array<{ t: number; v: number }>; bucket_ms: number | null };
    for (let i = 0; i < 50 && body.points.length < 3; i++) {
      await new Promise((r) => setTimeout(r, 100));
      body = (await (await fetch(`${p.apiUrl}/api/v1/series?${q.toString()}`, { headers: { authorization: `Bearer ${VIEWER_TOKEN}` } })).json()) as typeof body;
    }
    expect(body).toEqual({
      asset_id: 'lg-bridge-001',
      sensor_id: 'strain-01',
      metric: 'strain',
      from: new Date(T0 - 1000).toISOString(),
      to: new Date(T0 + 120_000).toISOString(),
      bucket_ms: null,
      points: [
        { t: T0, v: 312 },
        { t: T0 + 60_000, v: 260 },
        { t: T0 + 61_000, v: 320 },
      ],
    });
    const bucketed = await p.api('GET', `/api/v1/series?${q.toString()}&max_points=10`, undefined, VIEWER_TOKEN);
    expect(bucketed.body.points.length).toBe(3);
    const bad = await p.api('GET', '/api/v1/series?asset_id=a%27b&sensor_id=s&metric=strain', undefined, VIEWER_TOKEN);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('bad_request');

    const doc = await fetchOpenApi(p.apiUrl);
    for (const path of ['/console/session', '/api/v1/stream', '/api/v1/series', '/console']) expect(Object.keys(doc.paths)).toContain(path);
    expect(openApiMismatches(doc, 'GET', '/api/v1/series', 200, body)).toEqual([]);
    expect(openApiMismatches(doc, 'GET', '/api/v1/series', 400, bad.body)).toEqual([]);
    const session = await signIn(VIEWER_TOKEN);
    expect(openApiMismatches(doc, 'POST', '/console/session', 200, session.body)).toEqual([]);
  });
});
