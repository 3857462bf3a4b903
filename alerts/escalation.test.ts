import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { MetricsRegistry } from '../lib/metrics.js';
import type { AlertEventPoint } from '../ingest/storage.js';
import type { RuleEvent } from '../rules/types.js';
import { AlertService, type RuleInfo } from './alert-service.js';
import type { AlertStore } from './store.js';
import type { ChannelConfig, EscalationConfig } from './config.js';
import { dueSteps, mergeTargets, planRaise, scheduleFrom, selectPolicyId } from './escalation.js';
import type { Channel, DeliveryOutcome, Notification } from './outbox.js';
import { openAlertStore } from '../test/support/alert-store.js';

const T0 = Date.UTC(2025, 10, 28, 2, 0, 0);
const MIN = 60_000;

const bridgeDuty: EscalationConfig = {
  id: 'bridge-duty',
  tiers: [
    {
      after: 0,
      notify: [
        { channel: 'ops-hook', to: [] },
        { channel: 'sms', to: ['longcheng-duty'] },
      ],
    },
    { after: 10 * MIN, notify: [{ channel: 'sms', to: ['street-supervisor'] }] },
  ],
  repeat: 30 * MIN,
};
const streetDuty: EscalationConfig = {
  id: 'street-duty',
  tiers: [
    { after: 0, notify: [{ channel: 'ops-hook', to: [] }] },
    { after: 15 * MIN, notify: [{ channel: 'sms', to: ['street-supervisor'] }] },
  ],
};
const districtEmergency: EscalationConfig = {
  id: 'district-emergency',
  tiers: [
    { after: 0, notify: [{ channel: 'sms', to: ['district-chief'] }] },
    { after: 5 * MIN, notify: [{ channel: 'sms', to: ['mayor-office'] }] },
  ],
};

describe('escalation policy arithmetic', () => {
  it('selects the policy of the level, else of the highest defined level below it', () => {
    const map = { yellow: 'street-duty', red: 'district-emergency' };
    expect(selectPolicyId('bridge-duty', 'blue')).toBe('bridge-duty');
    expect(selectPolicyId(map, 'blue')).toBeUndefined();
    expect(selectPolicyId(map, 'yellow')).toBe('street-duty');
    expect(selectPolicyId(map, 'orange')).toBe('street-duty');
    expect(selectPolicyId(map, 'red')).toBe('district-emergency');
    expect(selectPolicyId(undefined, 'red')).toBeUndefined();
  });

  it('merges targets per channel', () => {
    expect(
      mergeTargets(
        [
          { channel: 'sms', to: ['a'] },
          { channel: 'ops-hook', to: [] },
        ],
        [{ channel: 'sms', to: ['b', 'a'] }],
      ),
    ).toEqual([
      { channel: 'sms', to: ['a', 'b'] },
      { channel: 'ops-hook', to: [] },
    ]);
  });

  it('notifies every overdue tier once and merges overdue repeats into one', () => {
    const start = scheduleFrom(bridgeDuty, 'al_1', T0, 0)!;
    const { steps, next } = dueSteps(bridgeDuty, start, T0 + 95 * MIN);
    // tier 0 at 0, tier 1 at 10m, repeats due at 40m and 70m merged into one; next repeat at 100m.
    expect(steps.map((s) => [s.event, s.tier, s.dueAt - T0])).toEqual([
      ['firing', 0, 0],
      ['escalated', 1, 10 * MIN],
      ['repeated', 1, 40 * MIN],
    ]);
    expect(next).toEqual({ alertId: 'al_1', policyId: 'bridge-duty', anchorAt: T0, nextTier: 2, nextDueAt: T0 + 100 * MIN, repeats: 1 });
  });

  it('keeps the schedule on a raise of a firing alert under the same policy, re-arms otherwise', () => {
    const current = { alertId: 'al_1', policyId: 'bridge-duty', anchorAt: T0, nextTier: 1, nextDueAt: T0 + 10 * MIN, repeats: 0 };
    const notified = [
      { channel: 'ops-hook', to: [] },
      { channel: 'sms', to: ['longcheng-duty'] },
    ];
    const kept = planRaise({
      alertId: 'al_1',
      now: T0 + 4 * MIN,
      wasAcknowledged: false,
      currentPolicy: bridgeDuty,
      currentSchedule: current,
      newPolicy: bridgeDuty,
      notifiedSoFar: notified,
    });
    expect(kept).toEqual({ policyId: 'bridge-duty', targets: notified, schedule: current, rearmed: false });
    const afterAck = planRaise({
      alertId: 'al_1',
      now: T0 + 4 * MIN,
      wasAcknowledged: true,
      currentPolicy: bridgeDuty,
      currentSchedule: undefined,
      newPolicy: bridgeDuty,
      notifiedSoFar: notified,
    });
    expect(afterAck.schedule).toEqual({ alertId: 'al_1', policyId: 'bridge-duty', anchorAt: T0 + 4 * MIN, nextTier: 1, nextDueAt: T0 + 14 * MIN, repeats: 0 });
    expect(afterAck.rearmed).toBe(true);
    const other = planRaise({
      alertId: 'al_1',
      now: T0 + 4 * MIN,
      wasAcknowledged: false,
      currentPolicy: streetDuty,
      currentSchedule: undefined,
      newPolicy: districtEmergency,
      notifiedSoFar: [{ channel: 'ops-hook', to: [] }],
    });
    expect(other).toEqual({
      policyId: 'district-emergency',
      targets: [
        { channel: 'ops-hook', to: [] },
        { channel: 'sms', to: ['district-chief'] },
      ],
      schedule: { alertId: 'al_1', policyId: 'district-emergency', anchorAt: T0 + 4 * MIN, nextTier: 1, nextDueAt: T0 + 9 * MIN, repeats: 0 },
      rearmed: true,
    });
  });
});

class RecordingChannel implements Channel {
  readonly type = 'recording';
  readonly maxAttempts = 3;
  constructor(
    readonly id: string,
    private readonly sent: Notification[],
  ) {}
  send(notification: Notification): Promise<DeliveryOutcome> {
    this.sent.push(notification);
    return Promise.resolve({ outcome: 'delivered', statusCode: 200 });
  }
}

function channelConfig(id: string): ChannelConfig {
  return { id, type: 'webhook', url: 'http://127.0.0.1:9/unused', headers: {}, timeout: 1000, max_attempts: 3, max_age: 3_600_000 };
}

const RULES: Record<string, RuleInfo> = {
  'bridge-strain': {
    id: 'bridge-strain',
    name: '主梁应变超限',
    message: '{asset_name} {sensor_id} 应变 {value}{unit}，超过{level_name}阈值 {threshold}',
    plan: ['通知桥梁养护单位现场核查'],
    escalation: 'bridge-duty',
  },
  'bridge-tilt': { id: 'bridge-tilt', plan: [], escalation: { yellow: 'street-duty', red: 'district-emergency' } },
};

function ruleEvent(level: RuleEvent['level'], value: number, threshold: number | null, ruleId = 'bridge-strain'): RuleEvent {
  return { ruleId, assetId: 'lg-bridge-001', sensorId: 'strain-01', metric: 'strain', level, value, threshold, ts: Date.now() - 1000 };
}

describe('escalation with fake timers', () => {
  let dir: string;
  let store: AlertStore;
  let service: AlertService;
  let sent: Notification[];
  let published: Array<[string, string]>;
  let points: AlertEventPoint[];
  let metrics: MetricsRegistry;

  function build(): AlertService {
    return new AlertService({
      store,
      clock: { now: () => Date.now() },
      logger: silentLogger(),
      metrics,
      rules: (id) => RULES[id],
      assets: (id) => (id === 'lg-bridge-001' ? { id, name: '龙岗河大桥', type: 'bridge', street: '龙城街道' } : undefined),
      units: () => 'µε',
      renderMessage: (template, vars) => (template ?? '{rule_name}').replace(/\{(\w+)\}/g, (m, k: string) => String(vars[k] ?? m)),
      escalations: [bridgeDuty, streetDuty, districtEmergency],
      channels: ['ops-hook', 'sms'].map(channelConfig),
      contacts: [
        { id: 'longcheng-duty', name: '龙城街道值班员', phone: '+8613800000001' },
        { id: 'street-supervisor', name: '街道主管' },
        { id: 'district-chief', name: '区应急办' },
        { id: 'mayor-office', name: '市长办公室' },
      ],
      publicUrl: 'https://watchpost.example.org/',
      publish: (topic, payload) => published.push([topic, payload]),
      writeAlertEvent: (p) => points.push(p),
      createChannel: (config) => new RecordingChannel(config.id, sent),
    });
  }

  /** What was sent since the last call, as [event, tier, channel, recipients]. */
  function takeSent(): Array<[string, number, string, string[]]> {
    return sent.splice(0).map((n) => [n.event, n.tier, n.channelId, n.recipients.map((r) => r.id)]);
  }

  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'watchpost-escalation-'));
    store = openAlertStore(dir);
    sent = [];
    published = [];
    points = [];
    metrics = new MetricsRegistry();
    service = build();
    service.start();
  });

  afterEach(async () => {
    await service.stop();
    store.close();
    vi.useRealTimers();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('notifies tier 0 at once, tier 1 after `after`, then repeats the last tier', async () => {
    void service.handle([ruleEvent('red', 312.5, 300)]);
    await vi.advanceTimersByTimeAsync(0);
    expect(takeSent()).toEqual([
      ['firing', 0, 'ops-hook', []],
      ['firing', 0, 'sms', ['longcheng-duty']],
    ]);
    await vi.advanceTimersByTimeAsync(10 * MIN - 1);
    expect(takeSent()).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(takeSent()).toEqual([['escalated', 1, 'sms', ['street-supervisor']]]);
    await vi.advanceTimersByTimeAsync(30 * MIN - 1);
    expect(takeSent()).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(takeSent()).toEqual([['repeated', 1, 'sms', ['street-supervisor']]]);
    await vi.advanceTimersByTimeAsync(30 * MIN);
    expect(takeSent()).toEqual([['repeated', 1, 'sms', ['street-supervisor']]]);

    const [alert] = service.list();
    expect(alert).toMatchObject({ rule_id: 'bridge-strain', level: 'red', state: 'firing', tier: 1, escalation: 'bridge-duty', started_at: '2025-11-28T02:00:00.000Z' });
    expect(alert!.message).toBe('龙岗河大桥 strain-01 应变 312.5µε，超过红色阈值 300');
    expect(alert!.ack_url).toBe(`https://watchpost.example.org/api/v1/alerts/${alert!.id}`);
    expect(await metrics.render()).toContain('watchpost_alerts_fired_total{level="red"} 1');
    expect(await metrics.render()).toContain('watchpost_alerts_open{level="red"} 1');
    expect(published.map(([topic, payload]) => [topic, (JSON.parse(payload) as { event: string; tier: number }).event, (JSON.parse(payload) as { tier: number }).tier])).toEqual([
      ['alerts/red/lg-bridge-001', 'firing', 0],
      ['alerts/red/lg-bridge-001', 'escalated', 1],
      ['alerts/red/lg-bridge-001', 'repeated', 1],
      ['alerts/red/lg-bridge-001', 'repeated', 1],
    ]);
    expect(points.map((p) => [p.event, p.level, p.alertId === alert!.id, p.value])).toEqual([
      ['firing', 'red', true, 312.5],
      ['escalated', 'red', true, 312.5],
      ['repeated', 'red', true, 312.5],
      ['repeated', 'red', true, 312.5],
    ]);
  });

  it('acknowledging stops escalation and tells those notified so far', async () => {
    void service.handle([ruleEvent('red', 312.5, 300)]);
    await vi.advanceTimersByTimeAsync(5 * MIN);
    takeSent();
    const id = service.list()[0]!.id;
    const view = service.acknowledge(id, { by: 'duty-officer', note: '已到现场' });
    expect(view).toMatchObject({ state: 'acknowledged', acknowledged_by: 'duty-officer', acknowledged_at: '2025-11-28T02:05:00.000Z' });
    await vi.advanceTimersByTimeAsync(0);
    expect(takeSent()).toEqual([
      ['acknowledged', 0, 'ops-hook', []],
      ['acknowledged', 0, 'sms', ['longcheng-duty']],
    ]);
    await vi.advanceTimersByTimeAsync(3 * 60 * MIN);
    expect(takeSent()).toEqual([]);
    // A second acknowledgement changes nothing and notifies nobody.
    expect(service.acknowledge(id, { by: 'someone-else' })).toMatchObject({ state: 'acknowledged', acknowledged_by: 'duty-officer' });
    await vi.advanceTimersByTimeAsync(0);
    expect(takeSent()).toEqual([]);

    const detail = service.get(id);
    expect(detail.timeline.map((e) => [e.kind, e.type, e.channel ?? null, e.tier ?? null])).toEqual([
      ['event', 'firing', null, null],
      ['delivery', 'queued', 'ops-hook', 0],
      ['delivery', 'queued', 'sms', 0],
      ['delivery', 'delivered', 'ops-hook', 0],
      ['delivery', 'delivered', 'sms', 0],
      ['event', 'acknowledged', null, null],
      ['delivery', 'queued', 'ops-hook', 0],
      ['delivery', 'queued', 'sms', 0],
      ['delivery', 'delivered', 'ops-hook', 0],
      ['delivery', 'delivered', 'sms', 0],
    ]);
    expect(detail.timeline[5]).toEqual({
      seq: detail.timeline[5]!.seq,
      at: '2025-11-28T02:05:00.000Z',
      kind: 'event',
      type: 'acknowledged',
      level: 'red',
      state: 'acknowledged',
      previous_state: 'firing',
      by: 'duty-officer',
      note: '已到现场',
    });
  });

  it('resolving notifies everyone notified so far, once per channel', async () => {
    void service.handle([ruleEvent('red', 312.5, 300)]);
    await vi.advanceTimersByTimeAsync(11 * MIN);
    expect(takeSent().length).toBe(3);
    const id = service.list()[0]!.id;
    expect(service.resolve(id, { by: 'duty-officer', note: '传感器故障' })).toMatchObject({ state: 'resolved', resolved_by: 'duty-officer', resolve_reason: 'operator' });
    await vi.advanceTimersByTimeAsync(0);
    expect(takeSent()).toEqual([
      ['resolved', 1, 'ops-hook', []],
      ['resolved', 1, 'sms', ['longcheng-duty', 'street-supervisor']],
    ]);
    await vi.advanceTimersByTimeAsync(2 * 60 * MIN);
    expect(takeSent()).toEqual([]);
    expect(() => service.acknowledge(id, { by: 'x' })).toThrow(expect.objectContaining({ code: 'alert_resolved', statusCode: 409 }));
    expect(() => service.get('al_missing')).toThrow(expect.objectContaining({ code: 'alert_not_found', statusCode: 404 }));
    expect(await metrics.render()).toContain('watchpost_alerts_open{level="red"} 0');
  });

  it('resolves on its own when no level is met, and a new level opens a new alert', async () => {
    void service.handle([ruleEvent('red', 312.5, 300)]);
    await vi.advanceTimersByTimeAsync(MIN);
    void service.handle([ruleEvent(null, 150, 300)]);
    await vi.advanceTimersByTimeAsync(0);
    void service.handle([ruleEvent('yellow', 205, 200)]);
    await vi.advanceTimersByTimeAsync(0);
    expect(takeSent()).toEqual([
      ['firing', 0, 'ops-hook', []],
      ['firing', 0, 'sms', ['longcheng-duty']],
      ['resolved', 0, 'ops-hook', []],
      ['resolved', 0, 'sms', ['longcheng-duty']],
      ['firing', 0, 'ops-hook', []],
      ['firing', 0, 'sms', ['longcheng-duty']],
    ]);
    expect(service.list().map((a) => [a.level, a.state, a.resolve_reason])).toEqual([
      ['yellow', 'firing', null],
      ['red', 'resolved', 'condition_cleared'],
    ]);
    expect(service.list({ state: 'resolved' }).length).toBe(1);
    expect(service.openAlerts().length).toBe(1);
  });

  it('a drop is recorded, not notified; a raise is notified at once; a raise after ack re-arms escalation', async () => {
    void service.handle([ruleEvent('orange', 260, 250)]);
    await vi.advanceTimersByTimeAsync(2 * MIN);
    takeSent();
    void service.handle([ruleEvent('yellow', 210, 200)]);
    await vi.advanceTimersByTimeAsync(0);
    expect(takeSent()).toEqual([]);
    const id = service.list()[0]!.id;
    service.acknowledge(id, { by: 'duty-officer' });
    await vi.advanceTimersByTimeAsync(MIN);
    takeSent();
    // t = 3m: raise while acknowledged -> firing again, tier 1 now due at 13m (not 10m).
    void service.handle([ruleEvent('red', 320, 300)]);
    await vi.advanceTimersByTimeAsync(0);
    expect(takeSent()).toEqual([
      ['level_raised', 0, 'ops-hook', []],
      ['level_raised', 0, 'sms', ['longcheng-duty']],
    ]);
    expect(service.get(id)).toMatchObject({ state: 'firing', level: 'red', acknowledged_by: null });
    await vi.advanceTimersByTimeAsync(10 * MIN - 1);
    expect(takeSent()).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(takeSent()).toEqual([['escalated', 1, 'sms', ['street-supervisor']]]);
    const events = service
      .get(id)
      .timeline.filter((e) => e.kind === 'event')
      .map((e) => [e.type, e.level, e.state]);
    expect(events).toEqual([
      ['firing', 'orange', 'firing'],
      ['level_dropped', 'yellow', 'firing'],
      ['acknowledged', 'yellow', 'acknowledged'],
      ['level_raised', 'red', 'firing'],
      ['escalated', 'red', 'firing'],
    ]);
    expect(published.map(([topic, payload]) => [topic, (JSON.parse(payload) as { event: string }).event])).toEqual([
      ['alerts/orange/lg-bridge-001', 'firing'],
      ['alerts/yellow/lg-bridge-001', 'level_dropped'],
      ['alerts/yellow/lg-bridge-001', 'acknowledged'],
      ['alerts/red/lg-bridge-001', 'level_raised'],
      ['alerts/red/lg-bridge-001', 'escalated'],
    ]);
  });

  it('per-level escalation: the level picks the policy; a raise to another policy notifies its tier 0 and re-arms', async () => {
    void service.handle([ruleEvent('orange', 3.1, 3, 'bridge-tilt')]);
    await vi.advanceTimersByTimeAsync(0);
    expect(takeSent()).toEqual([['firing', 0, 'ops-hook', []]]);
    await vi.advanceTimersByTimeAsync(4 * MIN);
    void service.handle([ruleEvent('red', 5.2, 5, 'bridge-tilt')]);
    await vi.advanceTimersByTimeAsync(0);
    expect(takeSent()).toEqual([
      ['level_raised', 0, 'ops-hook', []],
      ['level_raised', 0, 'sms', ['district-chief']],
    ]);
    // district-emergency tier 1 at raise + 5m; street-duty's tier 1 (15m) no longer applies.
    await vi.advanceTimersByTimeAsync(5 * MIN);
    expect(takeSent()).toEqual([['escalated', 1, 'sms', ['mayor-office']]]);
    await vi.advanceTimersByTimeAsync(60 * MIN);
    expect(takeSent()).toEqual([]);
    expect(service.list()[0]).toMatchObject({ escalation: 'district-emergency', tier: 1, rule_name: 'bridge-tilt' });
  });

  it('resolves the open alerts of a removed rule with the reason recorded, and filters the list', async () => {
    void service.handle([ruleEvent('red', 312.5, 300), { ...ruleEvent('yellow', 3.1, 3, 'bridge-tilt'), sensorId: 'tilt-01', metric: 'tilt' }]);
    await vi.advanceTimersByTimeAsync(0);
    takeSent();
    expect(service.list({ level: 'yellow' }).map((a) => a.rule_id)).toEqual(['bridge-tilt']);
    expect(service.list({ assetId: 'lg-bridge-001', limit: 1 }).length).toBe(1);
    expect(service.list({ assetId: 'other-asset' })).toEqual([]);
    expect(service.resolveForRemovedRule('bridge-strain')).toBe(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(takeSent()).toEqual([
      ['resolved', 0, 'ops-hook', []],
      ['resolved', 0, 'sms', ['longcheng-duty']],
    ]);
    const [resolved] = service.list({ state: 'resolved' });
    expect(resolved).toMatchObject({ rule_id: 'bridge-strain', resolved_by: 'system', resolve_reason: 'rule_removed' });
    expect(service.get(resolved!.id).timeline.filter((e) => e.type === 'resolved')).toEqual([
      {
        seq: expect.any(Number),
        at: '2025-11-28T02:00:00.000Z',
        kind: 'event',
        type: 'resolved',
        level: 'red',
        state: 'resolved',
        previous_state: 'firing',
        by: 'system',
        reason: 'rule_removed',
      },
    ]);
    expect(service.openAlerts().map((a) => a.rule_id)).toEqual(['bridge-tilt']);
    expect(() => service.acknowledge(resolved!.id, { by: '' })).toThrow(expect.objectContaining({ code: 'invalid_request', statusCode: 400 }));
  });

  it('after a restart no tier is skipped and none is sent twice', async () => {
    void service.handle([ruleEvent('red', 312.5, 300)]);
    await vi.advanceTimersByTimeAsync(0);
    expect(takeSent().length).toBe(2);
    await service.stop();
    // Down from 0m to 45m: tier 1 (10m) and the first repeat (40m) were due while down.
    await vi.advanceTimersByTimeAsync(45 * MIN);
    store.close();
    store = openAlertStore(dir);
    service = build();
    // The rules stage restarted too and reports the level again: not a new alert.
    void service.handle([ruleEvent('red', 312.5, 300)]);
    service.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(takeSent()).toEqual([
      ['escalated', 1, 'sms', ['street-supervisor']],
      ['repeated', 1, 'sms', ['street-supervisor']],
    ]);
    await vi.advanceTimersByTimeAsync(25 * MIN - 1);
    expect(takeSent()).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(takeSent()).toEqual([['repeated', 1, 'sms', ['street-supervisor']]]);
    expect(service.list().length).toBe(1);
  });
});
