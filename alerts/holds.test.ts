/**
 * Silences, flapping holds and delivery_failed alerts, with fake timers and the real alert
 * service on a temporary alerts.db. Notifications are recorded by scripted channels.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BRIDGE_DUTY, MIN, ruleEvent, startHarness, type Harness } from '../test/support/alerts.js';
import type { EscalationConfig } from './config.js';

const T0 = Date.UTC(2025, 10, 28, 2, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();

describe('silences', () => {
  let h: Harness;

  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
    h = startHarness();
  });

  afterEach(async () => {
    await h.close();
    vi.useRealTimers();
  });

  function silence(matchers: Record<string, unknown>, endsInMs: number, startsInMs = 0) {
    return h.service.createSilence({ matchers, starts_at: iso(Date.now() + startsInMs), ends_at: iso(Date.now() + endsInMs), reason: '桥梁检修' }, 'duty-officer');
  }

  it('records and publishes a silenced alert, holds its tiers, and sends every tier once when the silence ends', async () => {
    const s = silence({ asset_id: 'lg-bridge-001' }, 25 * MIN);
    expect(s).toMatchObject({ matchers: { asset_id: ['lg-bridge-001'] }, starts_at: iso(T0), ends_at: iso(T0 + 25 * MIN), reason: '桥梁检修', created_by: 'duty-officer', state: 'active' });
    expect(s.id).toMatch(/^si_[0-9a-f]{16}$/);
    void h.service.handle([ruleEvent('red', 312.5)]);
    await vi.advanceTimersByTimeAsync(24 * MIN);
    expect(h.take()).toEqual([]);
    const [alert] = h.service.list();
    expect(alert).toMatchObject({ state: 'firing', level: 'red', tier: null });
    expect(h.published.map(([topic, p]) => [topic, (JSON.parse(p) as { event: string }).event])).toEqual([['alerts/red/lg-bridge-001', 'firing']]);
    expect(h.points.map((p) => p.event)).toEqual(['firing']);
    await vi.advanceTimersByTimeAsync(MIN - 1);
    expect(h.take()).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    // Tier 0 (due at 0) and tier 1 (due at 10m) both came due during the silence: each once, in order.
    expect(h.take()).toEqual([
      ['firing', 0, 'ops-hook', []],
      ['escalated', 1, 'ops-hook', []],
      ['escalated', 1, 'sms', ['street-supervisor']],
    ]);
    // The repeat keeps the policy's cadence from the end of the silence.
    await vi.advanceTimersByTimeAsync(30 * MIN);
    expect(h.take().map(([e, t, c]) => [e, t, c])).toEqual([
      ['repeated', 1, 'ops-hook'],
      ['repeated', 1, 'sms'],
    ]);
    const events = h.service.get(alert!.id).timeline.filter((e) => e.kind === 'event');
    expect(events[1]).toMatchObject({ type: 'held', reason: 'silence', notice: 'firing', silence_ids: [s.id], until: iso(T0 + 25 * MIN) });
    expect(h.service.listSilences()).toEqual([]);
    expect(h.service.listSilences('expired').map((x) => [x.id, x.state])).toEqual([[s.id, 'expired']]);
  });

  it('an alert that opens and resolves within a silence is recorded and notified to nobody', async () => {
    silence({ rule_id: 'bridge-strain', level: ['red', 'orange'] }, 60 * MIN);
    void h.service.handle([ruleEvent('red', 312.5)]);
    await vi.advanceTimersByTimeAsync(5 * MIN);
    void h.service.handle([ruleEvent(null, 150)]);
    await vi.advanceTimersByTimeAsync(3 * 60 * MIN);
    expect(h.take()).toEqual([]);
    expect(h.service.list().map((a) => [a.state, a.resolve_reason])).toEqual([['resolved', 'condition_cleared']]);
  });

  it('does not hold alerts that do not match, nor before a silence starts', async () => {
    silence({ street: '坂田街道' }, 60 * MIN);
    silence({ asset_id: 'lg-bridge-001' }, 60 * MIN, 30 * MIN);
    void h.service.handle([ruleEvent('red', 312.5)]);
    await vi.advanceTimersByTimeAsync(0);
    expect(h.take()).toEqual([['firing', 0, 'ops-hook', []]]);
    expect(
      h.service
        .listSilences()
        .map((s) => s.state)
        .sort(),
    ).toEqual(['active', 'pending']);
  });

  it('a resolve and a raise during a silence are sent when it is deleted, to those notified before', async () => {
    void h.service.handle([ruleEvent('orange', 260)]);
    await vi.advanceTimersByTimeAsync(11 * MIN);
    expect(h.take()).toEqual([
      ['firing', 0, 'ops-hook', []],
      ['escalated', 1, 'ops-hook', []],
      ['escalated', 1, 'sms', ['street-supervisor']],
    ]);
    const s = silence({ asset_type: 'bridge' }, 60 * MIN);
    void h.service.handle([ruleEvent('red', 320)]);
    await vi.advanceTimersByTimeAsync(MIN);
    expect(h.take()).toEqual([]);
    h.service.deleteSilence(s.id, 'duty-officer');
    await vi.advanceTimersByTimeAsync(0);
    expect(h.take()).toEqual([
      ['level_raised', 1, 'ops-hook', []],
      ['level_raised', 1, 'sms', ['street-supervisor']],
    ]);
    // A second silence; the alert resolves under it; its end tells those notified.
    silence({ asset_id: 'lg-bridge-001' }, 10 * MIN);
    void h.service.handle([ruleEvent(null, 100)]);
    await vi.advanceTimersByTimeAsync(10 * MIN - 1);
    expect(h.take()).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.take()).toEqual([
      ['resolved', 1, 'ops-hook', []],
      ['resolved', 1, 'sms', ['street-supervisor']],
    ]);
    const id = h.service.list()[0]!.id;
    expect(
      h.service
        .get(id)
        .timeline.filter((e) => e.type === 'held' || e.type === 'released')
        .map((e) => [e.type, e.notice ?? e.held, e.event ?? null]),
    ).toEqual([
      ['held', 'level_raised', null],
      ['released', 'level_raised', 'level_raised'],
      ['held', 'resolved', null],
      ['released', 'resolved', 'resolved'],
    ]);
    expect(() => h.service.deleteSilence(s.id, 'x')).toThrow(expect.objectContaining({ code: 'silence_not_found', statusCode: 404 }));
  });

  it('keeps holding across a restart and releases at the end', async () => {
    silence({ asset_id: 'lg-bridge-001' }, 20 * MIN);
    void h.service.handle([ruleEvent('red', 312.5)]);
    await vi.advanceTimersByTimeAsync(MIN);
    await h.restart();
    await vi.advanceTimersByTimeAsync(18 * MIN);
    expect(h.take()).toEqual([]);
    await vi.advanceTimersByTimeAsync(MIN);
    expect(h.take().map(([e, t, c]) => [e, t, c])).toEqual([
      ['firing', 0, 'ops-hook'],
      ['escalated', 1, 'ops-hook'],
      ['escalated', 1, 'sms'],
    ]);
  });

  it('refuses bad silences with a reason', () => {
    const bad = (input: unknown) => {
      try {
        h.service.createSilence(input, 'x');
      } catch (error) {
        return (error as Error).message;
      }
      return 'accepted';
    };
    expect(bad({ matchers: {}, ends_at: iso(T0 + MIN), reason: 'r' })).toBe('body.matchers: give at least one of asset_id, rule_id, street, level, asset_type');
    expect(bad({ matchers: { colour: 'red' }, ends_at: iso(T0 + MIN), reason: 'r' })).toMatch(/^body\.matchers: Unrecognized key: "colour"/);
    expect(bad({ matchers: { level: 'purple' }, ends_at: iso(T0 + MIN), reason: 'r' })).toMatch(/^body\.matchers\.level/);
    expect(bad({ matchers: { asset_id: 'a' }, ends_at: 'tomorrow', reason: 'r' })).toBe('body.ends_at: must be an RFC 3339 time such as 2025-11-28T10:00:00+08:00');
    expect(bad({ matchers: { asset_id: 'a' }, ends_at: iso(T0 - MIN), reason: 'r' })).toBe('body.ends_at: must be after starts_at');
    expect(bad({ matchers: { asset_id: 'a' }, starts_at: iso(T0 - 10 * MIN), ends_at: iso(T0 - MIN), reason: 'r' })).toBe('body.ends_at: must be in the future');
    expect(bad({ matchers: { asset_id: 'a' }, ends_at: iso(T0 + 91 * 24 * 60 * MIN), reason: 'r' })).toBe('body.ends_at: a silence may last at most 90 days');
    expect(bad({ matchers: { asset_id: 'a' }, ends_at: iso(T0 + MIN), reason: ' ' })).toBe('body.reason: say why (the duty room reads it)');
  });
});

describe('flapping hold', () => {
  let h: Harness;

  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
    h = startHarness();
  });

  afterEach(async () => {
    await h.close();
    vi.useRealTimers();
  });

  it('holds notifications from the event marked started until the one marked ended, then sends one per alert', async () => {
    void h.service.handle([ruleEvent('yellow', 210)]);
    await vi.advanceTimersByTimeAsync(0);
    expect(h.take()).toEqual([['firing', 0, 'ops-hook', []]]);
    // The rules stage: the 7th change within the window makes it flapping.
    void h.service.handle([ruleEvent('red', 320, { flapping: 'started', changes: 7 })]);
    void h.service.handle([ruleEvent('orange', 270, { flapping: 'flapping', changes: 8 })]);
    void h.service.handle([ruleEvent('red', 330, { flapping: 'flapping', changes: 9 })]);
    await vi.advanceTimersByTimeAsync(20 * MIN);
    expect(h.take()).toEqual([]);
    expect(h.service.isFlapping({ ruleId: 'bridge-strain', assetId: 'lg-bridge-001', sensorId: 'strain-01' })).toBe(true);
    // Stable for one window: the `ended` event repeats the current level.
    void h.service.handle([ruleEvent('red', 330, { flapping: 'ended', changes: 9 })]);
    await vi.advanceTimersByTimeAsync(0);
    // One summary (the raise, to those notified plus tier 0), then the tier that came due meanwhile.
    expect(h.take()).toEqual([
      ['level_raised', 0, 'ops-hook', []],
      ['escalated', 1, 'ops-hook', []],
      ['escalated', 1, 'sms', ['street-supervisor']],
    ]);
    expect(h.service.list()[0]).toMatchObject({ level: 'red', state: 'firing', tier: 1 });
    expect(h.service.isFlapping({ ruleId: 'bridge-strain', assetId: 'lg-bridge-001', sensorId: 'strain-01' })).toBe(false);
  });

  it('setFlapping holds alerts that open and resolve meanwhile, and survives a restart', async () => {
    const key = { ruleId: 'bridge-strain', assetId: 'lg-bridge-001', sensorId: 'strain-01' };
    h.service.setFlapping(key, true);
    void h.service.handle([ruleEvent('red', 320)]);
    void h.service.handle([ruleEvent(null, 100)]);
    void h.service.handle([ruleEvent('orange', 260)]);
    await h.restart();
    await vi.advanceTimersByTimeAsync(30 * MIN);
    expect(h.take()).toEqual([]);
    h.service.setFlapping(key, false);
    await vi.advanceTimersByTimeAsync(0);
    // The resolved alert was never notified: nothing for it. The open one: tier 0 and tier 1, due meanwhile.
    expect(h.take()).toEqual([
      ['firing', 0, 'ops-hook', []],
      ['escalated', 1, 'ops-hook', []],
      ['escalated', 1, 'sms', ['street-supervisor']],
    ]);
  });
});

describe('delivery_failed alerts', () => {
  let h: Harness;
  const fallback: EscalationConfig = { id: 'fallback', tiers: [{ after: 0, notify: [{ channel: 'duty-phone', to: ['district-chief'] }] }] };

  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
    h = startHarness({
      escalations: [BRIDGE_DUTY, fallback],
      channels: [{ id: 'ops-hook' }, { id: 'sms', type: 'sms', addressing: 'person' }, { id: 'duty-phone', type: 'sms', addressing: 'person' }],
    });
  });

  afterEach(async () => {
    await h.close();
    vi.useRealTimers();
  });

  it('a delivery that fails for good raises a delivery_failed alert to the fallback escalation, once per (asset, channel)', async () => {
    h.channels.get('ops-hook')!.answers.push({ outcome: 'failed', error: 'error 310000: sign not match', statusCode: 200 });
    void h.service.handle([ruleEvent('orange', 260)]);
    await vi.advanceTimersByTimeAsync(0);
    expect(h.take()).toEqual([
      ['firing', 0, 'duty-phone', ['district-chief']],
      ['firing', 0, 'ops-hook', []],
    ]);
    const df = h.service.list().find((a) => a.rule_id === 'delivery_failed')!;
    expect(df).toMatchObject({ asset_id: 'lg-bridge-001', sensor_id: 'ops-hook', level: 'orange', state: 'firing', escalation: 'fallback', tier: 0 });
    expect(df.message).toBe('通知渠道 ops-hook 投递失败：龙岗河大桥「主梁应变超限」橙色预警的告警通知未送达（error 310000: sign not match）');
    // A second failure on the same channel, of a red alert on the same asset: the same alert, raised.
    h.channels.get('ops-hook')!.answers.push({ outcome: 'failed', error: 'error 310000: sign not match' });
    void h.service.handle([ruleEvent('red', 330, { ruleId: 'slope-tilt', sensorId: 'tilt-01', metric: 'tilt' })]);
    await vi.advanceTimersByTimeAsync(0);
    expect(h.take()).toEqual([
      ['level_raised', 0, 'duty-phone', ['district-chief']],
      ['firing', 0, 'ops-hook', []],
    ]);
    expect(
      h.service
        .list()
        .filter((a) => a.rule_id === 'delivery_failed')
        .map((a) => [a.level, a.state]),
    ).toEqual([['red', 'firing']]);
    const timeline = h.service.get(df.id).timeline.filter((e) => e.type === 'delivery_failed');
    expect(timeline.map((e) => [e.channel, e.event, e.error])).toEqual([
      ['ops-hook', 'firing', 'error 310000: sign not match'],
      ['ops-hook', 'firing', 'error 310000: sign not match'],
    ]);
  });

  it('a failing fallback channel does not loop', async () => {
    h.channels.get('ops-hook')!.answers.push({ outcome: 'failed', error: 'HTTP 404' });
    h.channels.get('duty-phone')!.answers.push({ outcome: 'failed', error: 'isv.MOBILE_NUMBER_ILLEGAL' });
    void h.service.handle([ruleEvent('red', 330)]);
    await vi.advanceTimersByTimeAsync(60 * MIN);
    expect(
      h.service
        .list()
        .map((a) => a.rule_id)
        .sort(),
    ).toEqual(['bridge-strain', 'delivery_failed']);
    expect(h.points.filter((p) => p.event === 'delivery_failed').map((p) => p.ruleId)).toEqual(['bridge-strain', 'delivery_failed']);
  });
});
