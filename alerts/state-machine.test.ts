import { describe, expect, it } from 'vitest';
import { AlertError } from './errors.js';
import { openAlert, transition, type AlertCore, type RuleInput } from './state-machine.js';

const T0 = 1_764_295_200_000;

function rule(level: RuleInput['level'], value: number, threshold: number | null, ts = T0): RuleInput {
  return { kind: 'rule', level, value, threshold, ts };
}

function opened(): AlertCore {
  return openAlert({ kind: 'rule', level: 'yellow', value: 210, threshold: 200, ts: T0 - 5 }, T0).alert;
}

describe('alert state machine', () => {
  it('opens firing with a firing event', () => {
    const t = openAlert({ kind: 'rule', level: 'yellow', value: 210, threshold: 200, ts: T0 - 5 }, T0);
    expect(t.alert).toEqual({
      level: 'yellow',
      state: 'firing',
      value: 210,
      threshold: 200,
      eventTs: T0 - 5,
      acknowledgedAt: null,
      acknowledgedBy: null,
      resolvedAt: null,
      resolvedBy: null,
      resolveReason: null,
      updatedAt: T0,
    });
    expect(t.event).toEqual({ type: 'firing', at: T0, state: 'firing', level: 'yellow', value: 210, threshold: 200, ts: T0 - 5 });
  });

  it('raises, drops and resolves on rule events', () => {
    const raised = transition(opened(), rule('red', 320, 300, T0 + 1), T0 + 10)!;
    expect(raised.event).toEqual({
      type: 'level_raised',
      at: T0 + 10,
      state: 'firing',
      level: 'red',
      previousLevel: 'yellow',
      previousState: 'firing',
      value: 320,
      threshold: 300,
      ts: T0 + 1,
    });
    expect(raised.alert).toMatchObject({ level: 'red', state: 'firing', value: 320, threshold: 300, eventTs: T0 + 1, updatedAt: T0 + 10 });

    const dropped = transition(raised.alert, rule('orange', 260, 250, T0 + 2), T0 + 20)!;
    expect(dropped.event).toEqual({ type: 'level_dropped', at: T0 + 20, state: 'firing', level: 'orange', previousLevel: 'red', value: 260, threshold: 250, ts: T0 + 2 });
    expect(dropped.alert.level).toBe('orange');

    const resolved = transition(dropped.alert, rule(null, 150, 200, T0 + 3), T0 + 30)!;
    expect(resolved.event).toEqual({
      type: 'resolved',
      at: T0 + 30,
      state: 'resolved',
      level: 'orange',
      previousState: 'firing',
      value: 150,
      threshold: 200,
      ts: T0 + 3,
      by: 'rule',
      reason: 'condition_cleared',
    });
    expect(resolved.alert).toMatchObject({ state: 'resolved', level: 'orange', resolvedAt: T0 + 30, resolvedBy: 'rule', resolveReason: 'condition_cleared', value: 150 });
  });

  it('ignores a rule event at the level the alert already has', () => {
    expect(transition(opened(), rule('yellow', 215, 200), T0 + 10)).toBeNull();
  });

  it('ignores rule events for a resolved alert', () => {
    const resolved = transition(opened(), { kind: 'resolve', by: 'ops' }, T0 + 1)!.alert;
    expect(transition(resolved, rule('red', 400, 300), T0 + 2)).toBeNull();
  });

  it('acknowledges once; a second acknowledgement is not a transition', () => {
    const acked = transition(opened(), { kind: 'acknowledge', by: 'duty-officer', note: 'on my way' }, T0 + 60)!;
    expect(acked.event).toEqual({ type: 'acknowledged', at: T0 + 60, state: 'acknowledged', level: 'yellow', previousState: 'firing', by: 'duty-officer', note: 'on my way' });
    expect(acked.alert).toMatchObject({ state: 'acknowledged', acknowledgedAt: T0 + 60, acknowledgedBy: 'duty-officer' });
    expect(transition(acked.alert, { kind: 'acknowledge', by: 'someone-else' }, T0 + 70)).toBeNull();
  });

  it('an acknowledged alert follows drops, stays acknowledged, and resolves on its own', () => {
    const acked = transition(transition(opened(), rule('red', 320, 300), T0 + 1)!.alert, { kind: 'acknowledge', by: 'ops' }, T0 + 2)!.alert;
    const dropped = transition(acked, rule('yellow', 220, 200), T0 + 3)!;
    expect(dropped.event.type).toBe('level_dropped');
    expect(dropped.event.state).toBe('acknowledged');
    expect(dropped.alert).toMatchObject({ state: 'acknowledged', level: 'yellow', acknowledgedBy: 'ops' });
    const resolved = transition(dropped.alert, rule(null, 100, 200), T0 + 4)!;
    expect(resolved.event).toMatchObject({ type: 'resolved', previousState: 'acknowledged', by: 'rule', reason: 'condition_cleared' });
  });

  it('records the rule stage’s reason for a clear (data returned, device online, rule changed)', () => {
    for (const reason of ['data_returned', 'device_online', 'rule_changed'] as const) {
      const resolved = transition(opened(), { ...rule(null, 100, 200), reason }, T0 + 4)!;
      expect(resolved.event).toMatchObject({ type: 'resolved', by: 'rule', reason });
      expect(resolved.alert.resolveReason).toBe(reason);
    }
  });

  it('a raise after an acknowledgement makes the alert firing again', () => {
    const acked = transition(opened(), { kind: 'acknowledge', by: 'ops' }, T0 + 2)!.alert;
    const raised = transition(acked, rule('red', 320, 300), T0 + 3)!;
    expect(raised.event).toMatchObject({ type: 'level_raised', state: 'firing', previousState: 'acknowledged', previousLevel: 'yellow', level: 'red' });
    expect(raised.alert).toMatchObject({ state: 'firing', level: 'red', acknowledgedAt: null, acknowledgedBy: null });
  });

  it('resolves by hand with a note', () => {
    const t = transition(opened(), { kind: 'resolve', by: 'ops', note: 'sensor replaced' }, T0 + 9)!;
    expect(t.event).toEqual({ type: 'resolved', at: T0 + 9, state: 'resolved', level: 'yellow', previousState: 'firing', by: 'ops', reason: 'operator', note: 'sensor replaced' });
    expect(t.alert).toMatchObject({ state: 'resolved', resolvedAt: T0 + 9, resolvedBy: 'ops', resolveReason: 'operator' });
  });

  it('refuses to acknowledge or resolve a resolved alert with alert_resolved (409)', () => {
    const resolved = transition(opened(), rule(null, 100, 200), T0 + 1)!.alert;
    for (const input of [{ kind: 'acknowledge', by: 'ops' } as const, { kind: 'resolve', by: 'ops' } as const]) {
      let caught: unknown;
      try {
        transition(resolved, input, T0 + 2);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(AlertError);
      expect((caught as AlertError).code).toBe('alert_resolved');
      expect((caught as AlertError).statusCode).toBe(409);
    }
  });
});
