import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import type { WorkOrderLinkResult, WorkOrderLinkState, WorkOrderView } from '../alerts/cases.js';
import type { AlertRecord } from '../alerts/store.js';
import { registerWorkOrderPage } from './work-order-page.js';

const TOKEN = 'w1~wo_0123456789abcdef0123~lg-water~abcdef~AAAAAAAAAAAAAAAA~BBBBBBBBBBBBBBBBBBBBBB';
const alert = {
  id: 'al_1',
  ruleId: 'r1',
  ruleName: '管网压力<低>',
  level: 'red',
  state: 'acknowledged',
  assetId: 'lg-hydrant-001',
  assetName: '消火栓 1',
  assetType: 'hydrant',
  street: '龙城街道',
  sensorId: 'p-01',
  metric: 'pressure',
  value: 0.05,
  threshold: 0.1,
  message: '压力 0.05 MPa <script>',
  plan: [],
  startedAt: Date.parse('2026-12-01T00:00:00Z'),
} as unknown as AlertRecord;
const order: WorkOrderView = {
  id: 'wo_0123456789abcdef0123',
  alert_id: 'al_1',
  department: 'lg-water',
  department_name: '龙岗水务集团',
  status: 'dispatched',
  note: '尽快',
  created_by: 'ops',
  created_at: '2026-12-01T00:00:00.000Z',
  due_at: '2026-12-01T02:00:00.000Z',
  overdue: false,
  arrived_at: null,
  closed_at: null,
  closed_by: null,
  outcome: null,
};

async function page(state: WorkOrderLinkState, result: WorkOrderLinkResult = state, method = 'GET', payload?: string) {
  const acts: Array<[string, string | undefined]> = [];
  const app = Fastify();
  registerWorkOrderPage(app, { workOrderLink: () => state, actOnWorkOrder: (_t, action, note) => (acts.push([action, note]), result) });
  const res = await app.inject({
    method: method as 'GET',
    url: `/wo/${TOKEN}`,
    ...(payload !== undefined ? { payload, headers: { 'content-type': 'application/x-www-form-urlencoded' } } : {}),
  });
  await app.close();
  return { status: res.statusCode, html: res.body, headers: res.headers, acts };
}

describe('the work-order page', () => {
  it('shows the alarm, the order and a form with the three actions, escaped, without scripts', async () => {
    const r = await page({ kind: 'valid', order, alert, notes: [{ at: '2026-12-01T00:01:00.000Z', type: 'dispatched', actor: 'ops', note: '请带<工具>' }] });
    expect(r.status).toBe(200);
    expect(r.html).toContain('<html lang="zh-CN">');
    expect(r.html).toContain('龙岗水务集团');
    expect(r.html).toContain('2026-12-01 10:00:00 (UTC+8)');
    for (const action of ['arrive', 'feedback', 'close']) expect(r.html).toContain(`name="action" value="${action}"`);
    expect(r.html).toContain('管网压力&lt;低&gt;');
    expect(r.html).toContain('请带&lt;工具&gt;');
    expect(r.html).not.toContain('<script');
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    expect(r.headers['content-security-policy']).toContain("default-src 'none'");
    expect(r.acts).toEqual([]);
  });

  it('answers bad, expired and closed links with a clear page, and acts only on a POST with an action', async () => {
    expect((await page({ kind: 'invalid' })).status).toBe(404);
    expect((await page({ kind: 'invalid' })).html).toContain('链接无效');
    expect((await page({ kind: 'expired' })).status).toBe(410);
    const closed = await page({ kind: 'closed', order: { ...order, status: 'closed' }, alert });
    expect([closed.status, closed.html.includes('工单已办结')]).toEqual([409, true]);
    const noAction = await page({ kind: 'valid', order, alert, notes: [] }, { kind: 'invalid' }, 'POST', 'note=x');
    expect([noAction.status, noAction.acts]).toEqual([422, []]);
    const done = await page(
      { kind: 'valid', order, alert, notes: [] },
      { kind: 'done', action: 'arrive', order: { ...order, status: 'on_site' }, alert },
      'POST',
      'action=arrive&note=%E5%B7%B2%E5%88%B0',
    );
    expect([done.status, done.acts, done.html.includes('已记录到场')]).toEqual([200, [['arrive', '已到']], true]);
    const tampered = await page({ kind: 'invalid' }, { kind: 'invalid' }, 'POST', 'action=close');
    expect([tampered.status, tampered.acts]).toEqual([404, [['close', undefined]]]);
  });
});
