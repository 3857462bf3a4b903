/**
 * The disposal loop end to end: Watchpost as a child process (`dist/server/cli.js start`), a
 * device publishing over MQTT, real HTTP receivers for the duty room's webhook and the
 * department's. An alarm walks new → acknowledged → verified → dispatched → on_site → closed
 * through the API and the work-order page, with every webhook body checked whole; another is
 * dismissed as sensor_fault and escalates no further; a kill -9 between dispatch and the
 * department's notification loses nothing and sends nothing twice.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { memberAt } from '../alerts/oncall.js';
import { startReceiver, type Receiver } from '../test/support/receiver.js';
import { cliBuilt, startWatchpostProcess, type WatchpostProcess } from '../test/support/watchpost-process.js';

const OPERATOR = 'operator-token-0123456789';
const DEVICE_SECRET = 'bridge-secret-0001';
const PUBLIC_URL = 'https://watchpost.example.org';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CONTACTS = [
  { id: 'zhang-san', name: '张三', phone: '+8613800000001' },
  { id: 'li-si', name: '李四', phone: '+8613800000002' },
];
const SCHEDULE = { id: 'water-oncall', time_zone: 'Asia/Shanghai', rotation: { members: ['zhang-san', 'li-si'], shift: 86_400_000, handoff: '08:30', start: '2026-01-01' } };

interface Body {
  delivery_id: string;
  event: string;
  tier: number;
  to: Array<{ id: string; name: string }>;
  work_order?: { id: string; department: string; due_at: string; url: string };
  alert: Record<string, unknown> & { id: string; ack_url: string; case: { status: string; department: string | null; work_order_id: string | null } };
}

function writeConfig(dir: string, dataDir: string, ops: Receiver, dept: Receiver): void {
  writeFileSync(
    join(dir, 'watchpost.yaml'),
    stringify({
      broker: { host: '127.0.0.1', port: 0 },
      api: { host: '127.0.0.1', port: 0, public_url: PUBLIC_URL, tokens: [{ name: 'duty-officer', token: OPERATOR, role: 'operator' }] },
      storage: { data_dir: dataDir },
      assets: [
        {
          id: 'lg-bridge-001',
          type: 'bridge',
          name: '龙岗河大桥',
          street: '龙城街道',
          owner: 'lg-bridge-maint',
          authorities: ['lg-housing'],
          sensors: [
            { id: 'strain-01', metrics: ['strain'] },
            { id: 'strain-02', metrics: ['strain'] },
          ],
        },
      ],
      metrics: { strain: { unit: 'µε', min: -5000, max: 5000 } },
      devices: [{ id: 'dau-bridge-001', secret: DEVICE_SECRET, assets: ['lg-bridge-001'] }],
      contacts: CONTACTS,
      departments: [
        { id: 'lg-bridge-maint', name: '桥梁养护中心', kind: 'owner', notify: [{ channel: 'dept-hook', to: [{ schedule: 'water-oncall' }] }] },
        { id: 'lg-housing', name: '区住建局', kind: 'authority', notify: ['ops-hook'] },
      ],
      schedules: [{ ...SCHEDULE, rotation: { ...SCHEDULE.rotation, shift: '1d' } }],
      rules: [
        {
          id: 'bridge-strain',
          name: '主梁应变超限',
          match: { asset_type: 'bridge', metric: 'strain', sensor_id: 'strain-01' },
          levels: { red: { above: 300 } },
          escalation: 'quick',
          dispatch: { department: 'owner', due: { red: '2h' } },
          plan: ['通知桥梁养护单位现场核查'],
        },
        { id: 'bridge-strain-2', name: '次梁应变超限', match: { asset_type: 'bridge', metric: 'strain', sensor_id: 'strain-02' }, levels: { red: { above: 300 } }, escalation: 'two-tier' },
      ],
      channels: [
        { id: 'ops-hook', type: 'webhook', url: ops.url },
        { id: 'dept-hook', type: 'webhook', url: dept.url },
      ],
      escalations: [
        { id: 'quick', tiers: [{ after: '0s', notify: ['ops-hook'] }] },
        {
          id: 'two-tier',
          tiers: [
            { after: '0s', notify: ['ops-hook'] },
            { after: '4s', notify: ['ops-hook'] },
          ],
        },
      ],
    }),
  );
}

async function publish(port: number, sensor: string, strain: number): Promise<void> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { username: 'dau-bridge-001', password: DEVICE_SECRET, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000 });
  await client.publishAsync(`telemetry/lg-bridge-001/${sensor}`, JSON.stringify({ ts: Date.now(), values: { strain } }), { qos: 1 });
  await client.endAsync();
}

async function api(p: WatchpostProcess, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${p.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${OPERATOR}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function until(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const bodiesOf = (r: Receiver): Body[] => r.requests.map((q) => JSON.parse(q.body) as Body);
/** One body per delivery_id (a delivery retried sends the same bytes). */
function deliveries(r: Receiver): Body[] {
  const seen = new Map<string, string>();
  for (const q of r.requests) {
    const id = JSON.parse(q.body).delivery_id as string;
    const earlier = seen.get(id);
    if (earlier !== undefined) expect(q.body).toBe(earlier);
    else seen.set(id, q.body);
  }
  return [...seen.values()].map((b) => JSON.parse(b) as Body);
}

describe.skipIf(!cliBuilt)('the disposal loop end to end', () => {
  let configDir: string;
  let dataDir: string;
  let ops: Receiver;
  let dept: Receiver;
  const running: WatchpostProcess[] = [];

  beforeEach(async () => {
    configDir = mkdtempSync(join(tmpdir(), 'watchpost-loop-config-'));
    dataDir = mkdtempSync(join(tmpdir(), 'watchpost-loop-data-'));
    ops = await startReceiver('/ops');
    dept = await startReceiver('/dept');
    writeConfig(configDir, dataDir, ops, dept);
  });

  afterEach(async () => {
    for (const p of running.splice(0)) await p.kill9();
    await ops.close();
    await dept.close();
    rmSync(configDir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function boot(): Promise<WatchpostProcess> {
    const p = await startWatchpostProcess(configDir);
    running.push(p);
    return p;
  }

  it('walks new → acknowledged → verified → dispatched → on_site → closed, with every webhook body as the contract says', async () => {
    const p = await boot();
    await publish(p.mqttPort!, 'strain-01', 320);
    await ops.waitForRequests(1);
    const alertId = bodiesOf(ops)[0]!.alert.id;
    const alertBase = (await api(p, 'GET', `/api/v1/alerts/${alertId}`)).json;
    const expected = (event: string, state: string, kase: Body['alert']['case'], ackUrl: string, extra: Partial<Body> = {}): Omit<Body, 'delivery_id'> => ({
      event,
      tier: 0,
      to: [],
      ...extra,
      alert: {
        id: alertId,
        rule_id: 'bridge-strain',
        rule_name: '主梁应变超限',
        level: 'red',
        state,
        asset_id: 'lg-bridge-001',
        asset_name: '龙岗河大桥',
        asset_type: 'bridge',
        street: '龙城街道',
        sensor_id: 'strain-01',
        metric: 'strain',
        value: 320,
        threshold: 300,
        started_at: alertBase.started_at,
        message: alertBase.message,
        plan: ['通知桥梁养护单位现场核查'],
        ack_url: ackUrl,
        case: kase,
      },
    });
    const none = { status: 'new', department: null, work_order_id: null };
    const check = (body: Body, want: Omit<Body, 'delivery_id'>) => {
      expect(body.delivery_id).toMatch(/^[0-9a-f-]{36}$/);
      const { delivery_id: _id, ...rest } = body;
      expect(rest).toEqual(want);
    };
    const signed = (body: Body) => {
      expect(body.alert.ack_url).toMatch(new RegExp(`^${PUBLIC_URL}/ack/v1~${alertId}~`));
      return body.alert.ack_url;
    };
    check(bodiesOf(ops)[0]!, expected('firing', 'firing', none, signed(bodiesOf(ops)[0]!)));

    expect((await api(p, 'POST', `/api/v1/alerts/${alertId}/ack`, { note: '收到' })).status).toBe(200);
    await ops.waitForRequests(2);
    check(bodiesOf(ops)[1]!, expected('acknowledged', 'acknowledged', { ...none, status: 'acknowledged' }, signed(bodiesOf(ops)[1]!)));

    // Closing now is a move the state machine forbids: 409 with the current status, nothing sent.
    expect(await api(p, 'POST', `/api/v1/alerts/${alertId}/close`, {})).toEqual({
      status: 409,
      json: { error: 'illegal_case_move', message: 'cannot close a case that is acknowledged', status: 'acknowledged' },
    });
    expect((await api(p, 'POST', `/api/v1/alerts/${alertId}/dispatch`, { department: 'lg-nope' })).status).toBe(404);
    expect((await api(p, 'POST', `/api/v1/alerts/${alertId}/dismiss`, { reason: 'bored' })).json).toMatchObject({
      error: 'bad_request',
      message: expect.stringMatching(/^body\.reason: /) as string,
    });

    const verified = await api(p, 'POST', `/api/v1/alerts/${alertId}/verify`, { note: '视频确认属实' });
    expect(verified.status).toBe(200);
    expect(verified.json.case).toEqual({ status: 'verified', department: null, work_order_id: null });
    await ops.waitForRequests(3);
    check(bodiesOf(ops)[2]!, expected('verified', 'acknowledged', { ...none, status: 'verified' }, signed(bodiesOf(ops)[2]!)));

    const dispatched = await api(p, 'POST', `/api/v1/alerts/${alertId}/dispatch`, { note: '请2小时内到场' });
    expect(dispatched.status).toBe(201);
    const order = dispatched.json.work_order as { id: string; due_at: string };
    expect(order).toMatchObject({
      alert_id: alertId,
      department: 'lg-bridge-maint',
      department_name: '桥梁养护中心',
      status: 'dispatched',
      note: '请2小时内到场',
      created_by: 'duty-officer',
      overdue: false,
    });
    const dispatchedAt = ((await api(p, 'GET', `/api/v1/alerts/${alertId}`)).json.timeline as Array<{ type: string; at: string }>).find((e) => e.type === 'dispatched')!.at;
    expect(Date.parse(order.due_at) - Date.parse(dispatchedAt)).toBe(2 * 3_600_000);
    const onCall = memberAt({ ...SCHEDULE }, [], Date.now());
    await dept.waitForRequests(1);
    await ops.waitForRequests(4);
    const dispatchedCase = { status: 'dispatched', department: 'lg-bridge-maint', work_order_id: order.id };
    const deptBody = bodiesOf(dept)[0]!;
    expect(deptBody.work_order!.url).toMatch(new RegExp(`^${PUBLIC_URL}/wo/w1~${order.id}~lg-bridge-maint~[0-9a-z]+~[A-Za-z0-9_-]{16}~[A-Za-z0-9_-]{22}$`));
    check(
      deptBody,
      expected('dispatched', 'acknowledged', dispatchedCase, signed(deptBody), {
        to: [CONTACTS.find((c) => c.id === onCall)!].map(({ id, name }) => ({ id, name })),
        work_order: { id: order.id, department: 'lg-bridge-maint', due_at: order.due_at, url: deptBody.work_order!.url },
      }),
    );
    check(bodiesOf(ops)[3]!, expected('dispatched', 'acknowledged', dispatchedCase, signed(bodiesOf(ops)[3]!)));

    // The department's phone page: Chinese, a form, no script; only the POST changes anything.
    const link = deptBody.work_order!.url.replace(PUBLIC_URL, p.apiUrl);
    const page = await fetch(link);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<html lang="zh-CN">');
    expect(html).toContain('桥梁养护中心');
    expect(html).toContain('name="action" value="arrive"');
    expect(html).not.toContain('<script');
    const form = (action: string, note: string) =>
      fetch(link, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ action, note }).toString() });
    expect((await form('arrive', '已到场，封闭一条车道')).status).toBe(200);
    await ops.waitForRequests(5);
    check(bodiesOf(ops)[4]!, expected('on_site', 'acknowledged', { ...dispatchedCase, status: 'on_site' }, signed(bodiesOf(ops)[4]!)));
    expect((await form('feedback', '裂缝长度约 20 cm')).status).toBe(200);
    await ops.waitForRequests(6);
    check(bodiesOf(ops)[5]!, expected('feedback', 'acknowledged', { ...dispatchedCase, status: 'on_site' }, signed(bodiesOf(ops)[5]!)));
    expect((await form('close', '已加固，恢复通行')).status).toBe(200);
    await ops.waitForRequests(7);
    check(bodiesOf(ops)[6]!, expected('closed', 'acknowledged', { ...dispatchedCase, status: 'closed' }, signed(bodiesOf(ops)[6]!)));
    // The link is used up by the close; a tampered one is refused; neither changes anything.
    expect((await form('feedback', 'again')).status).toBe(409);
    expect((await fetch(link.slice(0, -3) + 'AAA')).status).toBe(404);
    await sleep(500);
    expect(ops.requests).toHaveLength(7);
    // The department's webhook, notified with the work order, hears of its later steps too (without the link).
    expect(bodiesOf(dept).map((b) => [b.event, b.alert.case.status, b.work_order !== undefined])).toEqual([
      ['dispatched', 'dispatched', true],
      ['on_site', 'on_site', false],
      ['feedback', 'on_site', false],
      ['closed', 'closed', false],
    ]);

    const detail = (await api(p, 'GET', `/api/v1/alerts/${alertId}`)).json as { case: unknown; timeline: Array<Record<string, unknown>> };
    expect(detail.case).toEqual({ status: 'closed', department: 'lg-bridge-maint', work_order_id: order.id });
    const steps = detail.timeline.filter((e) => e.kind === 'event').map((e) => [e.type, e.actor ?? e.by ?? null, e.note ?? null]);
    expect(steps).toEqual([
      ['firing', null, null],
      ['acknowledged', 'duty-officer', '收到'],
      ['verified', 'duty-officer', '视频确认属实'],
      ['dispatched', 'duty-officer', '请2小时内到场'],
      ['on_site', 'lg-bridge-maint', '已到场，封闭一条车道'],
      ['feedback', 'lg-bridge-maint', '裂缝长度约 20 cm'],
      ['closed', 'lg-bridge-maint', '已加固，恢复通行'],
    ]);
    expect(detail.timeline.find((e) => e.type === 'dispatched')).toMatchObject({ department: 'lg-bridge-maint', work_order_id: order.id, due_at: order.due_at });
    const list = await api(p, 'GET', '/api/v1/work-orders?department=lg-bridge-maint');
    expect((list.json.work_orders as Array<{ id: string; status: string; closed_by: string; outcome: string }>).map((w) => [w.id, w.status, w.closed_by, w.outcome])).toEqual([
      [order.id, 'closed', 'lg-bridge-maint', '已加固，恢复通行'],
    ]);
    const oncall = await api(p, 'GET', '/api/v1/oncall');
    expect((oncall.json.schedules as Array<{ schedule: string; current: { member: string } }>).map((s) => [s.schedule, s.current.member])).toEqual([
      ['water-oncall', memberAt(SCHEDULE, [], Date.now())],
    ]);
  });

  it('an alarm dismissed as sensor_fault is notified as dismissed and escalates no further', async () => {
    const p = await boot();
    await publish(p.mqttPort!, 'strain-02', 330);
    await ops.waitForRequests(1);
    const alertId = bodiesOf(ops)[0]!.alert.id;
    const dismissed = await api(p, 'POST', `/api/v1/alerts/${alertId}/dismiss`, { reason: 'sensor_fault', note: '传感器松动' });
    expect(dismissed.status).toBe(200);
    expect(dismissed.json).toMatchObject({ state: 'acknowledged', case: { status: 'dismissed', department: null, work_order_id: null }, dismiss_reason: 'sensor_fault' });
    await ops.waitForRequests(3);
    // Past tier 1's due time (4 s): nothing more.
    await sleep(5000);
    expect(bodiesOf(ops).map((b) => [b.event, b.tier, b.alert.case.status])).toEqual([
      ['firing', 0, 'new'],
      ['acknowledged', 0, 'acknowledged'],
      ['dismissed', 0, 'dismissed'],
    ]);
    const detail = (await api(p, 'GET', `/api/v1/alerts/${alertId}`)).json as { timeline: Array<Record<string, unknown>> };
    expect(detail.timeline.find((e) => e.type === 'dismissed')).toMatchObject({ actor: 'duty-officer', note: '传感器松动', reason: 'sensor_fault', status: 'dismissed' });
    expect((await api(p, 'POST', `/api/v1/alerts/${alertId}/verify`, {})).json).toMatchObject({ error: 'illegal_case_move', status: 'dismissed' });
  });

  it("kill -9 between dispatch and the department's notification: nothing lost, nothing sent twice", async () => {
    const first = await boot();
    await publish(first.mqttPort!, 'strain-01', 340);
    await ops.waitForRequests(1);
    const alertId = bodiesOf(ops)[0]!.alert.id;
    expect((await api(first, 'POST', `/api/v1/alerts/${alertId}/ack`, {})).status).toBe(200);
    // The department's receiver is busy: the dispatched notification stays pending in the outbox.
    dept.respondWith.push(503, 503, 503, 503, 503, 503, 503, 503);
    const dispatched = await api(first, 'POST', `/api/v1/alerts/${alertId}/dispatch`, {});
    expect(dispatched.status).toBe(201);
    const orderId = (dispatched.json.work_order as { id: string }).id;
    await dept.waitForRequests(1);
    await first.kill9();
    const tried = dept.requests.length;
    dept.respondWith.length = 0;
    const second = await boot();
    await until('the department notified', () => dept.requests.length > tried);
    await sleep(1500);
    const deptDeliveries = deliveries(dept);
    expect(deptDeliveries.map((b) => [b.event, b.work_order?.id])).toEqual([['dispatched', orderId]]);
    expect(new Set(dept.requests.map((q) => q.headers['x-watchpost-delivery'])).size).toBe(1);
    expect(deliveries(ops).map((b) => b.event)).toEqual(['firing', 'acknowledged', 'dispatched']);
    const detail = (await api(second, 'GET', `/api/v1/alerts/${alertId}`)).json as { case: unknown; timeline: Array<Record<string, unknown>> };
    expect(detail.case).toEqual({ status: 'dispatched', department: 'lg-bridge-maint', work_order_id: orderId });
    expect(detail.timeline.filter((e) => e.type === 'dispatched')).toHaveLength(1);
    const orders = (await api(second, 'GET', '/api/v1/work-orders')).json.work_orders as Array<{ id: string; status: string }>;
    expect(orders.map((o) => [o.id, o.status])).toEqual([[orderId, 'dispatched']]);
    // The link made before the crash still works after it.
    const link = deptDeliveries[0]!.work_order!.url.replace(PUBLIC_URL, second.apiUrl);
    expect((await fetch(link)).status).toBe(200);
  });
});
