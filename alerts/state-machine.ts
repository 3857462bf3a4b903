/**
 * The alert state machine: named states, named transitions, no I/O and no clock of its own.
 *
 *   (none) --rule level L--------------------------> firing          event `firing`
 *   firing --rule level > L-------------------------> firing          event `level_raised`
 *   firing --rule level < L-------------------------> firing          event `level_dropped` (recorded, not notified)
 *   firing --operator acknowledge-------------------> acknowledged    event `acknowledged`
 *   acknowledged --rule level < L-------------------> acknowledged    event `level_dropped`
 *   acknowledged --rule level > L-------------------> firing          event `level_raised` (see below)
 *   firing | acknowledged --rule level null---------> resolved        event `resolved` (reason condition_cleared)
 *   firing | acknowledged --operator resolve--------> resolved        event `resolved` (reason operator)
 *   resolved --acknowledge | resolve----------------> error `alert_resolved` (409)
 *
 * A raise after an acknowledgement takes the alert back to `firing`: the acknowledgement was
 * given for the lower level, and a worse situation needs someone to take it on again, so the
 * raise is notified and escalation re-arms for the new level. A drop keeps the acknowledgement.
 * Acknowledging an acknowledged alert changes nothing and produces no event (idempotent).
 * A rule event at the level the alert already has (a rules stage that restarted and reports the
 * level again) is not a transition either.
 */
import { levelRank, type Level } from '../lib/levels.js';
import type { Threshold } from '../rules/types.js';
import { AlertError } from './errors.js';

export const ALERT_STATES = ['firing', 'acknowledged', 'resolved'] as const;
export type AlertState = (typeof ALERT_STATES)[number];

/** Events of the state machine; every transition produces exactly one. */
export const ALERT_EVENT_TYPES = ['firing', 'level_raised', 'level_dropped', 'acknowledged', 'resolved'] as const;
export type AlertEventType = (typeof ALERT_EVENT_TYPES)[number];

/** Why an alert was resolved. */
export type ResolveReason = 'condition_cleared' | 'operator' | 'rule_removed' | (string & {});

/** The part of an alert the state machine owns. */
export interface AlertCore {
  level: Level;
  state: AlertState;
  /** The reading value of the last rule event. */
  value: number;
  threshold: Threshold | null;
  /** Event time (reading `ts`) of the last rule event, epoch ms. */
  eventTs: number;
  acknowledgedAt: number | null;
  acknowledgedBy: string | null;
  resolvedAt: number | null;
  resolvedBy: string | null;
  resolveReason: ResolveReason | null;
  /** Platform time of the last transition. */
  updatedAt: number;
}

export interface RuleInput {
  kind: 'rule';
  level: Level | null;
  value: number;
  threshold: Threshold | null;
  /** Event time of the reading, epoch ms. */
  ts: number;
  /** Why the rule stage cleared the level (data_returned, device_online, rule_changed); default condition_cleared. */
  reason?: ResolveReason;
}

export interface AcknowledgeInput {
  kind: 'acknowledge';
  by: string;
  note?: string;
}

export interface ResolveInput {
  kind: 'resolve';
  by: string;
  note?: string;
  reason?: ResolveReason;
}

export type AlertInput = RuleInput | AcknowledgeInput | ResolveInput;

/** One timeline event. `at` is platform time; `ts` the reading's event time for rule-driven events. */
export interface AlertEvent {
  type: AlertEventType;
  at: number;
  /** State and level after the transition. */
  state: AlertState;
  level: Level;
  previousState?: AlertState;
  previousLevel?: Level;
  value?: number;
  threshold?: Threshold | null;
  ts?: number;
  by?: string;
  note?: string;
  reason?: ResolveReason;
}

export interface Transition<A extends AlertCore> {
  alert: A;
  event: AlertEvent;
}

/** Opens an alert for a rule event that reports a level. */
export function openAlert(input: RuleInput & { level: Level }, now: number): Transition<AlertCore> {
  const alert: AlertCore = {
    level: input.level,
    state: 'firing',
    value: input.value,
    threshold: input.threshold,
    eventTs: input.ts,
    acknowledgedAt: null,
    acknowledgedBy: null,
    resolvedAt: null,
    resolvedBy: null,
    resolveReason: null,
    updatedAt: now,
  };
  return {
    alert,
    event: { type: 'firing', at: now, state: 'firing', level: input.level, value: input.value, threshold: input.threshold, ts: input.ts },
  };
}

/**
 * Applies one input to an alert. Returns the new alert and its event, or null when the input
 * changes nothing. Throws `alert_resolved` for an operator action on a resolved alert.
 */
export function transition<A extends AlertCore>(alert: A, input: AlertInput, now: number): Transition<A> | null {
  switch (input.kind) {
    case 'rule':
      return applyRule(alert, input, now);
    case 'acknowledge':
      return acknowledge(alert, input, now);
    case 'resolve':
      return resolve(alert, input, now);
  }
}

function applyRule<A extends AlertCore>(alert: A, input: RuleInput, now: number): Transition<A> | null {
  // A resolved alert is history; a new level opens a new alert (the caller's job).
  if (alert.state === 'resolved') return null;
  const reading = { value: input.value, threshold: input.threshold, eventTs: input.ts, updatedAt: now };
  if (input.level === null) {
    const reason = input.reason ?? 'condition_cleared';
    const next: A = { ...alert, ...reading, state: 'resolved', resolvedAt: now, resolvedBy: 'rule', resolveReason: reason };
    return {
      alert: next,
      event: {
        type: 'resolved',
        at: now,
        state: 'resolved',
        level: alert.level,
        previousState: alert.state,
        value: input.value,
        threshold: input.threshold,
        ts: input.ts,
        by: 'rule',
        reason,
      },
    };
  }
  const diff = levelRank(input.level) - levelRank(alert.level);
  if (diff === 0) return null;
  if (diff > 0) {
    const next: A = { ...alert, ...reading, level: input.level, state: 'firing', acknowledgedAt: null, acknowledgedBy: null };
    return {
      alert: next,
      event: {
        type: 'level_raised',
        at: now,
        state: 'firing',
        level: input.level,
        previousLevel: alert.level,
        previousState: alert.state,
        value: input.value,
        threshold: input.threshold,
        ts: input.ts,
      },
    };
  }
  const next: A = { ...alert, ...reading, level: input.level };
  return {
    alert: next,
    event: { type: 'level_dropped', at: now, state: alert.state, level: input.level, previousLevel: alert.level, value: input.value, threshold: input.threshold, ts: input.ts },
  };
}

function acknowledge<A extends AlertCore>(alert: A, input: AcknowledgeInput, now: number): Transition<A> | null {
  if (alert.state === 'resolved') throw new AlertError('alert_resolved', 'the alert is resolved and can no longer be acknowledged');
  if (alert.state === 'acknowledged') return null;
  const next: A = { ...alert, state: 'acknowledged', acknowledgedAt: now, acknowledgedBy: input.by, updatedAt: now };
  return {
    alert: next,
    event: { type: 'acknowledged', at: now, state: 'acknowledged', level: alert.level, previousState: alert.state, by: input.by, ...(input.note ? { note: input.note } : {}) },
  };
}

function resolve<A extends AlertCore>(alert: A, input: ResolveInput, now: number): Transition<A> {
  if (alert.state === 'resolved') throw new AlertError('alert_resolved', 'the alert is already resolved');
  const reason = input.reason ?? 'operator';
  const next: A = { ...alert, state: 'resolved', resolvedAt: now, resolvedBy: input.by, resolveReason: reason, updatedAt: now };
  return {
    alert: next,
    event: { type: 'resolved', at: now, state: 'resolved', level: alert.level, previousState: alert.state, by: input.by, reason, ...(input.note ? { note: input.note } : {}) },
  };
}
