import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MIN, ruleEvent, startHarness, type Harness } from '../test/support/alerts.js';
import type { DepartmentConfig, EscalationConfig, ScheduleConfig } from './config.js';
import { AlertError } from './errors.js';
import type { AlertEventBody } from './event-body.js';

// 2026-12-01 08:00 Asia/Shanghai: half an hour before the water rotation hands off.
const T0 = Date.parse('2026-12-01T00:00:00Z');
const H = 60 * MIN;

const DEPARTMENTS: DepartmentConfig[] = [
  {
    id: 'lg-water',
    name: '龙岗水务集团',
    kind: 'owner',
    notify: [
      { channel: 'sms', to: ['schedule:water-oncall'] },
      { channel: 'dept-hook', to: ['schedule:water-oncall'] },
    ],
  },
  { id: 'lg-fire', name: '龙岗消防', kind: 'authority', notify: [{ channel: 'fire-hook', to: ['district-chief'] }] },
];
const SCHEDULES: ScheduleConfig[] = [
  { id: 'water-oncall', time_zone: 'Asia/Shanghai', rotation: { members: ['longcheng-duty', 'street-supervisor'], shift: 24 * H, handoff: '08:30', start: '2026-11-30' } },
];
const DUTY: EscalationConfig = {
  id: 'bridge-duty',
  ack_timeout: 15 * MIN,
  tiers: [
    { after: 0, notify: [{ channel: 'ops-hook', to: [] }] },
    { after: 10 * MIN, notify: [{ channel: 'sms', to: ['district-chief'] }] },
    { after: 20 * MIN, notify: [{ channel: 'sms', to: ['department:lg-fire'] }] },
  ],
};

function bodies(h: Harness): AlertEventBody[] {
  return h.sent.map((n) => JSON.parse(n.body) as AlertEventBody);
}

describe('the disposal loop', () => {
  let h: Harness;
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
    h = startHarness({
      escalations: [DUTY],
      channels: [{ id: 'ops-hook' }, { id: 'dept-hook' }, { id: 'fire-hook' }, { id: 'sms', type: 'sms', addressing: 'person' }],
      service: {
        departments: DEPARTMENTS,
        schedules: SCHEDULES,
        assetDepartments: (id) => (id === 'lg-bridge-001' ? { owner: 'lg-water', authorities: ['lg-fire'] } : undefined),
        dispatchDefaults: (ruleId) => (ruleId === 'bridge-strain' ? { department: 'owner', due: { red: 2 * H } } : undefined),
      },
    });
  });
  afterEach(async () => {
    await h.close();
    vi.useRealTimers();
  });

  async function fire(): Promise<string> {
    void h.service.handle([ruleEvent('red', 320)]);
    await vi.advanceTimersByTimeAsync(0);
    const id = h.service.list()[0]!.id;
    h.sent.splice(0);
    return id;
  }

  it('walks new → acknowledged → verified → dispatched → on_site → closed, each step on the timeline with actor and note', async () => {
    const id = await fire();
    expect(h.service.get(id).case).toEqual({ status: 'new', department: null, work_order_id: null });
    h.service.acknowledge(id, { by: 'duty-officer' });
    h.service.verify(id, { by: 'duty-officer', note: '视频确认' });
    await vi.advanceTimersByTimeAsync(0);
    h.sent.splice(0);

    const { work_order: order } = h.service.dispatch(id, { by: 'duty-officer', note: '请立即处置' });
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toMatchObject({ alert_id: id, department: 'lg-water', status: 'dispatched', due_at: new Date(T0 + 2 * H).toISOString(), overdue: false, created_by: 'duty-officer' });
    const sent = bodies(h);
    // The department (sms to whoever is on call, its webhook) with the link; the ops webhook without it.
    expect(h.sent.map((n) => n.channelId).sort()).toEqual(['dept-hook', 'ops-hook', 'sms']);
    h.sent.splice(0);
    const deptBodies = sent.filter((b) => b.work_order);
    expect(deptBodies).toHaveLength(2);
    for (const b of deptBodies) {
      expect(b.event).toBe('dispatched');
      expect(b.to).toEqual([{ id: 'longcheng-duty', name: '龙城街道值班员' }]);
      expect(b.work_order).toEqual({
        id: order.id,
        department: 'lg-water',
        due_at: order.due_at,
        url: expect.stringMatching(/^https:\/\/watchpost\.example\.org\/wo\/w1~wo_[0-9a-f]{20}~lg-water~/),
      });
      expect(b.alert.case).toEqual({ status: 'dispatched', department: 'lg-water', work_order_id: order.id });
    }
    const opsBody = sent.find((b) => !b.work_order)!;
    expect(opsBody).toMatchObject({ event: 'dispatched', to: [], alert: { case: { status: 'dispatched', department: 'lg-water', work_order_id: order.id } } });

    const url = deptBodies[0]!.work_order!.url;
    const token = url.slice(url.indexOf('/wo/') + 4);
    expect(h.service.workOrderLink(token)).toMatchObject({ kind: 'valid', order: { id: order.id } });
    expect(h.service.actOnWorkOrder(token, 'arrive', '已到场')).toMatchObject({ kind: 'done', order: { status: 'on_site' } });
    expect(h.service.actOnWorkOrder(token, 'feedback', '正在抢修')).toMatchObject({ kind: 'done', order: { status: 'on_site' } });
    expect(h.service.actOnWorkOrder(token, 'close', '已修复')).toMatchObject({ kind: 'done', order: { status: 'closed', closed_by: 'lg-water', outcome: '已修复' } });
    // Closed: the link only shows the closed order.
    expect(h.service.actOnWorkOrder(token, 'feedback', 'again')).toMatchObject({ kind: 'closed' });
    expect(h.service.workOrderLink(`${token.slice(0, -2)}xx`)).toEqual({ kind: 'invalid' });

    const events = h.service
      .get(id)
      .timeline.filter((e) => e.kind === 'event')
      .map((e) => [e.type, e.actor ?? e.by, e.note ?? null, e.status ?? null]);
    expect(events).toEqual([
      ['firing', undefined, null, null],
      ['acknowledged', 'duty-officer', null, null],
      ['verified', 'duty-officer', '视频确认', 'verified'],
      ['dispatched', 'duty-officer', '请立即处置', 'dispatched'],
      ['on_site', 'lg-water', '已到场', 'on_site'],
      ['feedback', 'lg-water', '正在抢修', 'on_site'],
      ['closed', 'lg-water', '已修复', 'closed'],
    ]);
    const dispatched = h.service.get(id).timeline.find((e) => e.type === 'dispatched')!;
    expect(dispatched).toMatchObject({ at: new Date(T0).toISOString(), department: 'lg-water', work_order_id: order.id, due_at: order.due_at, previous_status: 'verified' });
    expect(h.points.filter((p) => p.alertId === id).map((p) => [p.event, p.actor])).toEqual([
      ['firing', undefined],
      ['acknowledged', 'duty-officer'],
      ['verified', 'duty-officer'],
      ['dispatched', 'duty-officer'],
      ['on_site', 'lg-water'],
      ['feedback', 'lg-water'],
      ['closed', 'lg-water'],
    ]);
    expect(h.service.workOrders({ department: 'lg-water' }).map((w) => [w.id, w.status])).toEqual([[order.id, 'closed']]);
    // Every step on MQTT: the alert event body with the case, never a work-order link.
    const mqttEvents = h.published.filter(([topic]) => topic === 'alerts/red/lg-bridge-001').map(([, payload]) => JSON.parse(payload) as AlertEventBody);
    expect(mqttEvents.map((b) => [b.event, b.alert.case.status, b.work_order, b.to])).toEqual([
      ['firing', 'new', undefined, []],
      ['acknowledged', 'acknowledged', undefined, []],
      ['verified', 'verified', undefined, []],
      ['dispatched', 'dispatched', undefined, []],
      ['on_site', 'on_site', undefined, []],
      ['feedback', 'on_site', undefined, []],
      ['closed', 'closed', undefined, []],
    ]);
  });

  it('an expired link gets its own answer and changes nothing', async () => {
    const id = await fire();
    h.service.acknowledge(id, { by: 'duty-officer' });
    const { work_order: order } = h.service.dispatch(id, { by: 'duty-officer', due: '1h' });
    await vi.advanceTimersByTimeAsync(0);
    const body = bodies(h).find((b) => b.work_order)!;
    const token = body.work_order!.url.split('/wo/')[1]!;
    // Valid until 7 days after the due time.
    vi.setSystemTime(Date.parse(order.due_at) + 7 * 24 * H - 1000);
    expect(h.service.workOrderLink(token).kind).toBe('valid');
    vi.setSystemTime(Date.parse(order.due_at) + 7 * 24 * H);
    expect(h.service.workOrderLink(token)).toEqual({ kind: 'expired' });
    expect(h.service.actOnWorkOrder(token, 'close', 'late')).toEqual({ kind: 'expired' });
    expect(h.service.get(id).case.status).toBe('dispatched');
  });

  it('refuses illegal moves with the current status and changes nothing', async () => {
    const id = await fire();
    const attempt = () => h.service.close(id, { by: 'duty-officer' });
    expect(attempt).toThrow(AlertError);
    try {
      attempt();
    } catch (error) {
      expect(error).toMatchObject({ code: 'illegal_case_move', statusCode: 409, caseStatus: 'new' });
    }
    expect(h.service.get(id)).toMatchObject({ state: 'firing', case: { status: 'new' } });
    expect(() => h.service.dispatch(id, { by: 'x', department: 'lg-nope' })).toThrow(expect.objectContaining({ code: 'department_not_found' }) as Error);
    // A resolved alert's new case must be verified before it is dispatched; a firing one is taken on by the dispatch.
    void h.service.handle([ruleEvent(null, 10)]);
    await vi.advanceTimersByTimeAsync(0);
    expect(() => h.service.dispatch(id, { by: 'x' })).toThrow(
      expect.objectContaining({ code: 'illegal_case_move', caseStatus: 'new', message: 'cannot dispatch a case that is new' }) as Error,
    );
    expect(h.store.listWorkOrders()).toEqual([]);
    h.service.verify(id, { by: 'x' });
    expect(h.service.dispatch(id, { by: 'x' }).alert.case).toMatchObject({ status: 'dispatched', department: 'lg-water' });
  });

  it('dispatching a firing alert acknowledges it first, in the same transaction', async () => {
    const id = await fire();
    const { alert } = h.service.dispatch(id, { by: 'duty-officer' });
    expect(alert).toMatchObject({ state: 'acknowledged', acknowledged_by: 'duty-officer', case: { status: 'dispatched' } });
    expect(
      h.service
        .get(id)
        .timeline.filter((e) => e.kind === 'event')
        .map((e) => [e.type, e.previous_status ?? null]),
    ).toEqual([
      ['firing', null],
      ['acknowledged', null],
      ['dispatched', 'acknowledged'],
    ]);
  });

  it('dismiss stops escalation and records the reason', async () => {
    const id = await fire();
    const view = h.service.dismiss(id, 'sensor_fault', { by: 'duty-officer', note: '传感器故障' });
    expect(view).toMatchObject({ state: 'acknowledged', case: { status: 'dismissed' }, dismiss_reason: 'sensor_fault' });
    await vi.advanceTimersByTimeAsync(30 * MIN);
    expect(h.take().map(([e]) => e)).toEqual(['acknowledged', 'dismissed']);
    expect(h.service.get(id).timeline.find((e) => e.type === 'dismissed')).toMatchObject({
      actor: 'duty-officer',
      note: '传感器故障',
      reason: 'sensor_fault',
      status: 'dismissed',
      previous_status: 'acknowledged',
    });
  });

  it('resolves a schedule when the notification is sent: a hand-off while it waits reaches the new member', async () => {
    const id = await fire();
    h.service.acknowledge(id, { by: 'duty-officer' });
    h.channels.get('sms')!.answers.push({ outcome: 'retry', error: 'busy', retryAfterMs: 60 * MIN });
    h.channels.get('dept-hook')!.answers.push({ outcome: 'retry', error: 'busy', retryAfterMs: 60 * MIN });
    // 08:00 Shanghai: the first attempt resolves the schedule to longcheng-duty.
    h.service.dispatch(id, { by: 'duty-officer' });
    await vi.advanceTimersByTimeAsync(0);
    const first = h.sent.filter((n) => n.channelId === 'sms' || n.channelId === 'dept-hook').map((n) => [n.channelId, n.recipients.map((r) => r.id)]);
    expect(first.sort()).toEqual([
      ['dept-hook', ['longcheng-duty']],
      ['sms', ['longcheng-duty']],
    ]);
    h.sent.splice(0);
    // The retry after the 08:30 hand-off sends the same bytes (same delivery_id, same `to`).
    await vi.advanceTimersByTimeAsync(61 * MIN);
    const retried = h.sent.filter((n) => n.channelId === 'sms');
    expect(retried.map((n) => n.recipients.map((r) => r.id))).toEqual([['longcheng-duty']]);
    expect((JSON.parse(retried[0]!.body) as AlertEventBody).to).toEqual([{ id: 'longcheng-duty', name: '龙城街道值班员' }]);
  });

  it('a row written before a hand-off and first sent after it goes to the member on call at sending', async () => {
    const id = await fire();
    h.service.acknowledge(id, { by: 'duty-officer' });
    await vi.advanceTimersByTimeAsync(0);
    vi.setSystemTime(T0 + 29 * MIN);
    // The sender runs after the commit; move the clock past the 08:30 hand-off before it does.
    h.service.dispatch(id, { by: 'duty-officer' });
    vi.setSystemTime(T0 + 31 * MIN);
    await vi.advanceTimersByTimeAsync(0);
    const sms = h.sent.filter((n) => n.channelId === 'sms');
    expect(sms.map((n) => n.recipients.map((r) => r.id))).toEqual([['street-supervisor']]);
    expect(
      h.store
        .outboxForAlert(id)
        .filter((r) => r.channelId === 'sms')
        .map((r) => r.recipients),
    ).toEqual([['street-supervisor']]);
  });

  it('an override takes precedence inside its window', async () => {
    const id = await fire();
    h.service.createOverride('water-oncall', { member: 'district-chief', starts_at: new Date(T0 - H).toISOString(), ends_at: new Date(T0 + H).toISOString() }, 'duty-officer');
    expect(h.service.onCall()).toEqual([
      {
        schedule: 'water-oncall',
        time_zone: 'Asia/Shanghai',
        current: expect.objectContaining({ member: 'district-chief', name: '区应急办', from: new Date(T0 - H).toISOString(), until: new Date(T0 + H).toISOString() }),
        next: { member: 'street-supervisor', name: '街道主管', from: new Date(T0 + H).toISOString(), until: new Date(T0 + 30 * MIN + 24 * H).toISOString() },
      },
    ]);
    h.service.acknowledge(id, { by: 'duty-officer' });
    h.service.dispatch(id, { by: 'duty-officer' });
    await vi.advanceTimersByTimeAsync(0);
    expect(h.sent.filter((n) => n.channelId === 'sms').map((n) => n.recipients.map((r) => r.id))).toEqual([['district-chief']]);
    expect(() => h.service.createOverride('nope', { member: 'district-chief', starts_at: new Date(T0).toISOString(), ends_at: new Date(T0 + H).toISOString() }, 'x')).toThrow(
      expect.objectContaining({ code: 'schedule_not_found' }) as Error,
    );
  });

  it('an overdue work order notifies its department again and tells the authorities, once, also after a restart', async () => {
    const id = await fire();
    h.service.acknowledge(id, { by: 'duty-officer' });
    const { work_order: order } = h.service.dispatch(id, { by: 'duty-officer', due: '30m' });
    await vi.advanceTimersByTimeAsync(0);
    h.sent.splice(0);
    await h.restart();
    await vi.advanceTimersByTimeAsync(30 * MIN - 1);
    expect(h.sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    const overdue = bodies(h);
    expect(overdue.map((b) => [b.event, b.work_order?.id ?? null, b.to.map((t) => t.id)]).sort()).toEqual([
      ['overdue', null, []],
      ['overdue', null, ['district-chief']],
      ['overdue', order.id, ['street-supervisor']],
      ['overdue', order.id, ['street-supervisor']],
    ]);
    h.sent.splice(0);
    await vi.advanceTimersByTimeAsync(2 * H);
    expect(h.sent).toEqual([]);
    expect(h.service.workOrders({}).map((w) => w.overdue)).toEqual([true]);
    expect(h.points.filter((p) => p.event === 'overdue').map((p) => [p.alertId, p.actor])).toEqual([[id, '']]);
  });

  it('an acknowledged case neither dispatched nor closed within ack_timeout escalates from the tier after the last notified', async () => {
    const id = await fire();
    h.service.acknowledge(id, { by: 'duty-officer' });
    await vi.advanceTimersByTimeAsync(0);
    h.sent.splice(0);
    await vi.advanceTimersByTimeAsync(15 * MIN);
    expect(h.take()).toEqual([['escalated', 1, 'sms', ['district-chief']]]);
    await vi.advanceTimersByTimeAsync(15 * MIN);
    expect(h.take()).toEqual([['escalated', 2, 'fire-hook', ['district-chief']]]);
    await vi.advanceTimersByTimeAsync(60 * MIN);
    expect(h.take()).toEqual([]);
    expect(
      h.service
        .get(id)
        .timeline.filter((e) => e.type === 'escalated')
        .map((e) => [e.tier, e.reason]),
    ).toEqual([
      [1, 'ack_timeout'],
      [2, 'ack_timeout'],
    ]);
  });

  it('a raise after the acknowledgement leaves escalation to its schedule; acknowledging again restarts the ack timeout', async () => {
    const id = await fire();
    void h.service.handle([ruleEvent('yellow', 210)]);
    await vi.advanceTimersByTimeAsync(0);
    h.service.acknowledge(id, { by: 'duty-officer' });
    await vi.advanceTimersByTimeAsync(5 * MIN);
    h.sent.splice(0);
    expect(h.service.get(id).state).toBe('acknowledged');
    // Dropped to yellow and raised to red again: firing, escalation re-armed (tier 1 due 10m after the raise).
    void h.service.handle([ruleEvent('red', 330)]);
    await vi.advanceTimersByTimeAsync(10 * MIN);
    expect(h.take().map(([e, t]) => [e, t])).toEqual([
      ['level_raised', 0],
      ['escalated', 1],
    ]);
    h.service.acknowledge(id, { by: 'duty-officer' });
    await vi.advanceTimersByTimeAsync(15 * MIN - 1);
    h.sent.splice(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.take()).toEqual([['escalated', 2, 'fire-hook', ['district-chief']]]);
  });

  it('a dispatch stops the ack timeout', async () => {
    const id = await fire();
    h.service.acknowledge(id, { by: 'duty-officer' });
    h.service.dispatch(id, { by: 'duty-officer' });
    await vi.advanceTimersByTimeAsync(0);
    h.sent.splice(0);
    await vi.advanceTimersByTimeAsync(60 * MIN);
    expect(h.take()).toEqual([]);
  });

  it('a case stays open after its signal resolves', async () => {
    const id = await fire();
    void h.service.handle([ruleEvent(null, 10)]);
    await vi.advanceTimersByTimeAsync(0);
    expect(h.service.get(id)).toMatchObject({ state: 'resolved', case: { status: 'new' } });
    h.service.verify(id, { by: 'duty-officer' });
    // Retention keeps a resolved alert while its case is open, with its work order.
    h.service.dispatch(id, { by: 'duty-officer' });
    await vi.advanceTimersByTimeAsync(0);
    expect(h.store.pruneResolved(Date.now() + H, 100).alerts).toBe(0);
    expect(h.service.close(id, { by: 'duty-officer', outcome: 'resolved' })).toMatchObject({ state: 'resolved', case: { status: 'closed' } });
    await vi.advanceTimersByTimeAsync(0);
    expect(h.store.pruneResolved(Date.now() + H, 100).alerts).toBe(1);
    expect([h.store.getAlert(id), h.store.getCase(id), h.store.listWorkOrders()]).toEqual([undefined, undefined, []]);
  });
});
