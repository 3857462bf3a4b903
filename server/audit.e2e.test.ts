/**
 * The audit log end to end: a whole platform, a real webhook receiver, requests over HTTP; every
 * state-changing request shows in GET /api/v1/audit with exact fields, and in alerts.db never
 * with a token or a link's secret.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchOpenApi, openApiMismatches } from '../test/support/openapi.js';
import { ADMIN_TOKEN, baseConfig, DEVICE_SECRET, HOOK_SECRET, OPS_TOKEN, startPlatform, tempDir, VIEWER_TOKEN, type RunningPlatform } from '../test/support/platform.js';
import { startReceiver, type Receiver } from '../test/support/receiver.js';

const T0 = Date.parse('2025-11-28T02:00:00.000Z');

describe('audit log', () => {
  let receiver: Receiver;
  let p: RunningPlatform;
  let started: number;

  beforeAll(async () => {
    receiver = await startReceiver();
    p = await startPlatform(baseConfig({ webhookUrl: receiver.url, dataDir: tempDir('audit') }));
    started = Date.now();
  });
  afterAll(async () => {
    await p?.stop();
    await receiver?.close();
  });

  it('records an acknowledgement through the link page, silences, refused and unauthenticated requests, and lists them to an admin only', async () => {
    const device = await p.connect('dau-bridge-001', DEVICE_SECRET);
    await device.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: T0, values: { strain: 310 } }), { qos: 1 });
    const [firing] = await receiver.waitForRequests(1);
    const alert = (JSON.parse(firing!.body) as { alert: { id: string; ack_url: string } }).alert;
    const ackPath = new URL(alert.ack_url).pathname;
    expect(ackPath).toMatch(/^\/ack\/v1~/);
    const linkToken = decodeURIComponent(ackPath.slice('/ack/'.length));

    const viewerResolve = await p.api('POST', `/api/v1/alerts/${alert.id}/resolve`, { note: 'x' }, VIEWER_TOKEN);
    expect(viewerResolve.status).toBe(403);
    const ack = await fetch(`${p.apiUrl}${ackPath}?lang=zh`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'note=%E5%B7%B2%E5%88%B0%E5%9C%BA' });
    expect(ack.status).toBe(200);
    const replay = await fetch(`${p.apiUrl}${ackPath}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    expect(replay.status).toBe(409);
    const silence = await p.api('POST', '/api/v1/silences', { matchers: { asset_id: ['lg-bridge-001'] }, ends_at: new Date(Date.now() + 3_600_000).toISOString(), reason: '检修' });
    expect(silence.status).toBe(201);
    expect((await p.api('DELETE', `/api/v1/silences/${silence.body.id as string}`)).status).toBe(204);
    expect((await p.api('DELETE', '/api/v1/silences/si_0000000000000000')).status).toBe(404);
    expect((await p.api('POST', `/api/v1/alerts/${alert.id}/ack`, {}, 'not-a-token-at-all')).status).toBe(401);
    // Reads are not audited.
    expect((await p.api('GET', `/api/v1/alerts/${alert.id}`, undefined, VIEWER_TOKEN)).status).toBe(200);

    const viewer = await p.api('GET', '/api/v1/audit', undefined, VIEWER_TOKEN);
    expect(viewer).toEqual({ status: 403, body: { error: 'forbidden', message: 'this needs the admin role' } });
    expect((await p.api('GET', '/api/v1/audit', undefined, OPS_TOKEN)).status).toBe(403);

    const listed = await p.api('GET', `/api/v1/audit?since=${new Date(started).toISOString()}`, undefined, ADMIN_TOKEN);
    expect(listed.status).toBe(200);
    const entries = listed.body.audit as Array<{ seq: number; at: string; actor: string | null; method: string; path: string; outcome: number }>;
    expect(entries.map(({ actor, method, path, outcome }) => ({ actor, method, path, outcome }))).toEqual([
      { actor: null, method: 'POST', path: `/api/v1/alerts/${alert.id}/ack`, outcome: 401 },
      { actor: 'duty-officer', method: 'DELETE', path: '/api/v1/silences/si_0000000000000000', outcome: 404 },
      { actor: 'duty-officer', method: 'DELETE', path: `/api/v1/silences/${silence.body.id as string}`, outcome: 204 },
      { actor: 'duty-officer', method: 'POST', path: '/api/v1/silences', outcome: 201 },
      { actor: `link:${alert.id}`, method: 'POST', path: '/ack/REDACTED', outcome: 409 },
      { actor: `link:${alert.id}`, method: 'POST', path: '/ack/REDACTED', outcome: 200 },
      { actor: 'screen', method: 'POST', path: `/api/v1/alerts/${alert.id}/resolve`, outcome: 403 },
    ]);
    const seqs = entries.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
    for (const e of entries) {
      expect(Date.parse(e.at)).toBeGreaterThanOrEqual(started);
      expect(Date.parse(e.at)).toBeLessThanOrEqual(Date.now());
    }
    expect(listed.body.next_before).toBeNull();
    const doc = await fetchOpenApi(p.apiUrl);
    expect(openApiMismatches(doc, 'GET', '/api/v1/audit', listed.status, listed.body)).toEqual([]);
    expect(openApiMismatches(doc, 'GET', '/api/v1/audit', viewer.status, viewer.body)).toEqual([]);

    // Pages of two, newest first, continued with next_before.
    const first = await p.api('GET', '/api/v1/audit?limit=2', undefined, ADMIN_TOKEN);
    expect(first.body.audit.map((e: { seq: number }) => e.seq)).toEqual(seqs.slice(0, 2));
    expect(first.body.next_before).toBe(seqs[1]);
    const second = await p.api('GET', `/api/v1/audit?limit=2&before=${first.body.next_before as number}`, undefined, ADMIN_TOKEN);
    expect(second.body.audit.map((e: { seq: number }) => e.seq)).toEqual(seqs.slice(2, 4));
    const later = await p.api('GET', `/api/v1/audit?since=${Date.now() + 60_000}`, undefined, ADMIN_TOKEN);
    expect(later.body).toEqual({ audit: [], next_before: null });
    expect(await p.api('GET', '/api/v1/audit?since=yesterday', undefined, ADMIN_TOKEN)).toEqual({
      status: 400,
      body: { error: 'bad_request', message: 'query.since: must be RFC 3339 or epoch milliseconds' },
    });

    // No token and no link secret anywhere in the stored log.
    const db = new Database(join(p.dataDir, 'alerts.db'), { readonly: true, fileMustExist: true });
    try {
      const stored = JSON.stringify(db.prepare('SELECT * FROM audit_log').all());
      for (const secret of [OPS_TOKEN, ADMIN_TOKEN, VIEWER_TOKEN, 'not-a-token-at-all', HOOK_SECRET, linkToken, linkToken.split('~').pop()!]) expect(stored).not.toContain(secret);
      expect(db.prepare('SELECT COUNT(*) AS n FROM audit_log').get()).toEqual({ n: 7 });
    } finally {
      db.close();
    }
  });
});
