/**
 * `watchpost report` as users run it (`node dist/server/cli.js`), beside a running platform that
 * holds alerts.db open (WAL): its figures are what the alerts' timelines in the API say.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../test/support/binaries.js';
import { ADMIN_TOKEN, baseConfig, DEVICE_SECRET, startPlatform, tempDir, VIEWER_TOKEN, type RunningPlatform } from '../test/support/platform.js';
import { startReceiver, type Receiver } from '../test/support/receiver.js';
import { CLI, runCli } from '../test/support/watchpost-process.js';

const T0 = Date.parse('2025-11-28T02:00:00.000Z');

describe.skipIf(!existsSync(CLI))('watchpost report', () => {
  let receiver: Receiver;
  let p: RunningPlatform;
  let from: number;

  beforeAll(async () => {
    receiver = await startReceiver();
    const config = baseConfig({ webhookUrl: receiver.url, dataDir: tempDir('report') });
    p = await startPlatform({
      ...config,
      departments: [{ id: 'lg-bridge', name: '桥梁养护中心', kind: 'owner', notify: [{ channel: 'ops-hook', to: [] }] }],
      assets: config.assets.map((a) => (a.id === 'lg-bridge-001' ? { ...a, owner: 'lg-bridge' } : a)),
    });
    from = Date.now() - 1000;
  });
  afterAll(async () => {
    await p?.stop();
    await receiver?.close();
  });

  it("reads alerts.db while the platform runs, and its figures are the timelines'", async () => {
    const device = await p.connect('dau-bridge-001', DEVICE_SECRET);
    const publish = (i: number, strain: number) => device.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: T0 + i * 1000, values: { strain } }), { qos: 1 });
    const alertsNow = async () => (await p.api('GET', '/api/v1/alerts', undefined, VIEWER_TOKEN)).body.alerts as Array<{ id: string; state: string; level: string; started_at: string }>;

    await publish(0, 310);
    const [first] = await waitFor('the first alert', async () => ((await alertsNow()).length === 1 ? await alertsNow() : undefined));
    expect((await p.api('POST', `/api/v1/alerts/${first!.id}/ack`, { note: '已派人' })).status).toBe(200);
    await publish(1, 100);
    await waitFor('resolved', async () => ((await alertsNow())[0]?.state === 'resolved' ? true : undefined));
    await publish(2, 260); // orange
    const second = await waitFor('the second alert', async () => (await alertsNow()).find((a) => a.id !== first!.id));

    const detail = (await p.api('GET', `/api/v1/alerts/${first!.id}`, undefined, VIEWER_TOKEN)).body as { started_at: string; timeline: Array<{ type: string; at: string }> };
    const ackSeconds = (Date.parse(detail.timeline.find((e) => e.type === 'acknowledged')!.at) - Date.parse(detail.started_at)) / 1000;

    const to = Date.now() + 60_000;
    const result = await runCli(['report', '--config', p.configDir, '--from', String(from), '--to', new Date(to).toISOString(), '--json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    const ack = { count: 1, median_s: ackSeconds, p90_s: ackSeconds };
    const none = { count: 0, median_s: null, p90_s: null };
    const stages = { ack, verify: none, dispatch: none, on_site: none, close: none };
    expect(report.total).toEqual({
      cases: 2,
      status: { new: 1, acknowledged: 1, verified: 0, dismissed: 0, dispatched: 0, on_site: 0, closed: 0 },
      stages,
      overdue: 0,
      dismissed: 0,
      false_alarm_rate: 0,
    });
    expect(report.by_department).toEqual([{ department: 'lg-bridge', ...report.total }]);
    expect(report.by_level.map((l: { level: string; cases: number; stages: { ack: unknown } }) => [l.level, l.cases, l.stages.ack])).toEqual([
      ['red', 1, ack],
      ['orange', 1, none],
    ]);
    expect(second.level).toBe('orange');
    expect(report.false_alarms.by_sensor).toEqual([{ asset_id: 'lg-bridge-001', sensor_id: 'strain-01', cases: 2, dismissed: 0, rate: 0, reasons: {} }]);

    const text = await runCli(['report', '--config', p.configDir, '--from', String(from), '--to', String(to)]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^cases started .*: 2;/);
    expect(text.stdout).toMatch(/\nlg-bridge +2 +2 +0 +0\.0% +0 +[\d.]+s \/ [\d.]+s \(1\) +- +- +- +-\n/);

    // The platform still writes after the report read beside it.
    expect((await p.api('POST', `/api/v1/alerts/${second.id}/ack`, {})).status).toBe(200);
  });

  it('after one alarm walks the whole loop (work-order page included) and another is dismissed, the report and the metrics are what the timelines say', async () => {
    const device = await p.connect('dau-bridge-001', DEVICE_SECRET);
    const publish = (i: number, strain: number) => device.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: T0 + 100_000 + i * 1000, values: { strain } }), { qos: 1 });
    const open = async () => ((await p.api('GET', '/api/v1/alerts?state=firing', undefined, VIEWER_TOKEN)).body.alerts as Array<{ id: string }>)[0];
    const windowFrom = Date.now();
    // The earlier test's second alert is still open (acknowledged): resolve it first.
    await publish(0, 100);
    await waitFor('no open alert', async () => ((await p.api('GET', '/api/v1/alerts?state=acknowledged', undefined, VIEWER_TOKEN)).body.alerts.length === 0 ? true : undefined));

    await publish(1, 320);
    const a = await waitFor('alarm A', open);
    const dispatchedBefore = receiver.requests.length;
    expect((await p.api('POST', `/api/v1/alerts/${a.id}/ack`, {})).status).toBe(200);
    expect((await p.api('POST', `/api/v1/alerts/${a.id}/verify`, { note: '视频确认' })).status).toBe(200);
    expect((await p.api('POST', `/api/v1/alerts/${a.id}/dispatch`, { department: 'lg-bridge', due: '2h' })).status).toBe(201);
    const woUrl = await waitFor('the work order notification', async () => {
      const body = receiver.requests
        .slice(dispatchedBefore)
        .map((r) => JSON.parse(r.body) as { event: string; work_order?: { url: string } })
        .find((b) => b.event === 'dispatched' && b.work_order);
      return body?.work_order?.url;
    });
    await publish(2, 100); // A's signal resolves; its case stays open
    await publish(3, 265);
    const b = await waitFor('alarm B', async () => {
      const x = await open();
      return x && x.id !== a.id ? x : undefined;
    });
    expect((await p.api('POST', `/api/v1/alerts/${b.id}/dismiss`, { reason: 'sensor_fault', note: '传感器松动' })).status).toBe(200);
    const woPath = new URL(woUrl).pathname;
    const form = (action: string) => fetch(`${p.apiUrl}${woPath}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `action=${action}&note=ok` });
    expect((await form('arrive')).status).toBe(200);
    expect((await form('close')).status).toBe(200);
    // The work-order page's steps are audited under the link's department, never with its token.
    const audit = (await p.api('GET', '/api/v1/audit?limit=2', undefined, ADMIN_TOKEN)).body as { audit: Array<{ actor: string; method: string; path: string; outcome: number }> };
    expect(audit.audit.map(({ actor, method, path, outcome }) => ({ actor, method, path, outcome }))).toEqual([
      { actor: 'link:lg-bridge', method: 'POST', path: '/wo/REDACTED', outcome: 200 },
      { actor: 'link:lg-bridge', method: 'POST', path: '/wo/REDACTED', outcome: 200 },
    ]);
    expect(JSON.stringify(audit)).not.toContain(woPath.split('~').pop());
    const windowTo = Date.now() + 1;

    type Detail = { started_at: string; case: { status: string }; timeline: Array<{ type: string; at: string; kind: string }> };
    const detail = (await p.api('GET', `/api/v1/alerts/${a.id}`, undefined, VIEWER_TOKEN)).body as Detail;
    const bDetail = (await p.api('GET', `/api/v1/alerts/${b.id}`, undefined, VIEWER_TOKEN)).body as Detail;
    const seconds = (d: Detail, type: string) => (Date.parse(d.timeline.find((e) => e.kind === 'event' && e.type === type)!.at) - Date.parse(d.started_at)) / 1000;
    expect([detail.case.status, bDetail.case.status]).toEqual(['closed', 'dismissed']);
    const expected = Object.fromEntries(
      (['verify', 'dispatch', 'on_site', 'close'] as const).map((stage, i) => {
        const s = seconds(detail, ['verified', 'dispatched', 'on_site', 'closed'][i]!);
        return [stage, { count: 1, median_s: s, p90_s: s }];
      }),
    );
    // Dismissing B took it on, as acknowledging does: two acknowledgements.
    const [lo, hi] = [seconds(detail, 'acknowledged'), seconds(bDetail, 'acknowledged')].sort((x, y) => x - y) as [number, number];

    const result = await runCli(['report', '--config', p.configDir, '--from', String(windowFrom), '--to', String(windowTo), '--json']);
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout);
    expect(report.total).toEqual({
      cases: 2,
      status: { new: 0, acknowledged: 0, verified: 0, dismissed: 1, dispatched: 0, on_site: 0, closed: 1 },
      stages: { ack: { count: 2, median_s: expect.any(Number), p90_s: expect.any(Number) }, ...expected },
      overdue: 0,
      dismissed: 1,
      false_alarm_rate: 0.5,
    });
    // Figures are given to the millisecond.
    expect(Math.abs(report.total.stages.ack.median_s - (lo + hi) / 2)).toBeLessThanOrEqual(0.0005 + 1e-9);
    expect(Math.abs(report.total.stages.ack.p90_s - (lo + 0.9 * (hi - lo)))).toBeLessThanOrEqual(0.0005 + 1e-9);
    expect(report.by_level.map((l: { level: string; cases: number; dismissed: number }) => [l.level, l.cases, l.dismissed])).toEqual([
      ['red', 1, 0],
      ['orange', 1, 1],
    ]);
    expect(report.false_alarms.by_sensor).toEqual([{ asset_id: 'lg-bridge-001', sensor_id: 'strain-01', cases: 2, dismissed: 1, rate: 0.5, reasons: { sensor_fault: 1 } }]);
    // GET /api/v1/report answers the same JSON, from the store the platform holds open.
    const answered = await p.api('GET', `/api/v1/report?from=${windowFrom}&to=${windowTo}`, undefined, VIEWER_TOKEN);
    expect(answered.status).toBe(200);
    expect(answered.body).toEqual(report);
    expect(answered.body.total).toMatchObject({ cases: 2, overdue: 0, dismissed: 1, false_alarm_rate: 0.5, stages: { close: expected.close } });

    // The histogram holds the same times.
    const metrics = (await (await fetch(`${p.apiUrl}/metrics`)).text()).split('\n');
    for (const [stage, figures] of Object.entries(expected)) {
      expect(metrics).toContain(`watchpost_case_stage_seconds_count{stage="${stage}",level="red"} 1`);
      const sum = metrics.find((l) => l.startsWith(`watchpost_case_stage_seconds_sum{stage="${stage}",level="red"} `));
      expect(Number(sum!.split(' ')[1])).toBeCloseTo(figures.median_s, 3);
    }
    // Open cases by status as the API lists them (the earlier test leaves its two acknowledged).
    const all = (await p.api('GET', '/api/v1/alerts', undefined, VIEWER_TOKEN)).body.alerts as Array<{ case: { status: string } }>;
    const count = (status: string) => all.filter((x) => x.case.status === status).length;
    expect(count('closed') + count('dismissed')).toBe(2);
    expect(metrics.filter((l) => l.startsWith('watchpost_cases_open{'))).toEqual(
      ['new', 'acknowledged', 'verified', 'dispatched', 'on_site'].map((status) => `watchpost_cases_open{status="${status}"} ${count(status)}`),
    );
  });

  it('refuses a missing, reversed or bad range (CLI and API)', async () => {
    expect(await runCli(['report', '--config', p.configDir, '--from', '2026-12-01T00:00:00Z'])).toMatchObject({
      code: 2,
      stderr: 'watchpost report: give --from TIME and --to TIME (see: watchpost report --help)\n',
    });
    expect(await runCli(['report', '--config', p.configDir, '--from', '2026-12-02T00:00:00Z', '--to', '2026-12-01T00:00:00Z'])).toMatchObject({
      code: 2,
      stderr: '--from must be before --to\n',
    });
    expect(await p.api('GET', '/api/v1/report?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z', undefined, VIEWER_TOKEN)).toMatchObject({
      status: 400,
      body: { error: 'bad_request', message: 'query.from must be before query.to' },
    });
    expect(await p.api('GET', '/api/v1/report?from=yesterday&to=2026-12-01T00:00:00Z', undefined, VIEWER_TOKEN)).toMatchObject({
      status: 400,
      body: { error: 'bad_request', message: 'query.from: the time must be epoch milliseconds or an RFC 3339 time such as 2025-06-01T10:00:00+08:00' },
    });
  });
});
