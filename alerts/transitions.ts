/**
 * Alert transitions: a rule event or an operator action goes through the state machine, and the
 * transition is recorded with its timeline event, outbox rows and escalation schedule in one
 * transaction (`commit`); its effects run only after the commit.
 */
import { LEVEL_NAMES_ZH, LEVELS, type Level } from '../lib/levels.js';
import type { Logger } from '../lib/logger.js';
import type { Counter } from '../lib/metrics.js';
import type { Clock } from '../lib/clock.js';
import type { EscalationRef } from '../rules/config.js';
import type { RuleEvent } from '../rules/types.js';
import { ALERTS_FIRED_METRIC, ALERTS_OPEN_METRIC, DELIVERY_FAILED_RULE, newAlertId, type AlertContext, type Effect, type MessageVars, type RuleInfo } from './alert-types.js';
import type { EscalationConfig } from './config.js';
import { AlertError } from './errors.js';
import { dueSteps, planRaise, scheduleFrom, selectPolicyId, type EscalationStep } from './escalation.js';
import type { Holds } from './holds.js';
import type { Notifier } from './notifier.js';
import { openAlert, transition, type AlertInput, type Transition } from './state-machine.js';
import { isOpenAlertExists, type AlertRecord, type AlertStore, type EscalationSchedule } from './store.js';

/** Attempts of a transaction that loses the race to open an alert (each retry finds it open, so two suffice). */
const MAX_OPEN_CONFLICTS = 3;

/** What an alert is opened from: a rule event, or the platform itself (delivery_failed). */
export interface OpenSpec {
  ruleId: string;
  assetId: string;
  sensorId: string;
  metric: string;
  level: Level;
  value: number;
  threshold: AlertRecord['threshold'];
  ts: number;
  ruleName: string;
  assetName: string;
  assetType: string;
  street: string;
  /** Fixed message; undefined renders the rule's template. */
  message?: string;
  plan: string[];
  policy: EscalationConfig | undefined;
}

export class Transitions {
  private readonly store: AlertStore;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly escalations: ReadonlyMap<string, EscalationConfig>;
  private readonly fired: Counter;
  private openCounts = new Map<string, number>();
  /** Called inside the transaction of every acknowledgement (the case takes the alert on: cases.ts). */
  onAcknowledged?: (alert: AlertRecord, now: number, effects: Effect[]) => void;

  constructor(
    private readonly ctx: AlertContext,
    private readonly holds: Holds,
    private readonly notifier: Notifier,
    /** The schedule changed: re-arm the escalation timer (after the commit). */
    private readonly armEscalations: () => void,
  ) {
    this.store = ctx.store;
    this.clock = ctx.clock;
    this.logger = ctx.logger;
    this.escalations = ctx.escalations;
    this.fired = ctx.options.metrics.counter(ALERTS_FIRED_METRIC, 'Alerts opened, by the level they opened at.');
    ctx.options.metrics
      .gauge(ALERTS_OPEN_METRIC, 'Alerts currently open (firing or acknowledged), by level.')
      .collect(() => LEVELS.map((level) => [{ level }, this.openCounts.get(level) ?? 0]));
  }

  /**
   * Runs fn in one transaction, then its effects. When another instance of a cluster opened the
   * alert fn was about to open (the one-open-alert index refused it), the transaction is rolled
   * back and fn runs again: it then finds that alert open and applies its change to it.
   */
  commit<T>(fn: (effects: Effect[]) => T): T {
    for (let attempt = 1; ; attempt++) {
      const effects: Effect[] = [];
      let result: T;
      try {
        result = this.store.transaction(() => fn(effects));
      } catch (error) {
        if (!isOpenAlertExists(error) || attempt >= MAX_OPEN_CONFLICTS) throw error;
        this.logger.info({ attempt }, 'another instance opened the alert first; applying the change to its alert');
        continue;
      }
      this.runEffects(effects);
      return result;
    }
  }

  runEffects(effects: readonly Effect[]): void {
    for (const effect of effects) {
      try {
        effect();
      } catch (error) {
        this.logger.error({ err: error }, 'an alert effect failed after the transition was recorded');
      }
    }
  }

  /** Applies a rule event as of `now`, the platform time it reached the alert stage. */
  applyRuleEvent(event: RuleEvent, now: number, effects: Effect[]): void {
    const open = this.store.findOpenAlert(event.ruleId, event.assetId, event.sensorId);
    if (!open) {
      if (event.level !== null) this.openRuleAlert(event as RuleEvent & { level: Level }, now, effects);
      return;
    }
    const t = transition(open, { kind: 'rule', level: event.level, value: event.value, threshold: event.threshold, ts: event.ts, ...(event.reason ? { reason: event.reason } : {}) }, now);
    if (t) this.applyTransition(open, t, now, effects);
  }

  operatorTransition(id: string, input: AlertInput, effects: Effect[]): AlertRecord {
    const now = this.clock.now();
    const alert = this.store.getAlert(id);
    if (!alert) throw new AlertError('alert_not_found', `no alert with id "${id}"`);
    const t = transition(alert, input, now);
    if (!t) return alert;
    return this.applyTransition(alert, t, now, effects);
  }

  private openRuleAlert(event: RuleEvent & { level: Level }, now: number, effects: Effect[]): void {
    const rule = this.ctx.options.rules(event.ruleId);
    const asset = this.ctx.options.assets(event.assetId);
    this.openFrom(
      {
        ruleId: event.ruleId,
        assetId: event.assetId,
        sensorId: event.sensorId,
        metric: event.metric,
        level: event.level,
        value: event.value,
        threshold: event.threshold,
        ts: event.ts,
        ruleName: rule?.name ?? event.ruleId,
        assetName: asset?.name ?? event.assetId,
        assetType: asset?.type ?? '',
        street: asset?.street ?? '',
        plan: [...(rule?.plan ?? [])],
        policy: this.policyFor(rule?.escalation, event.level, event.ruleId),
      },
      now,
      effects,
      rule,
    );
  }

  openFrom(spec: OpenSpec, now: number, effects: Effect[], rule?: RuleInfo): AlertRecord {
    const { alert: core, event: firing } = openAlert({ kind: 'rule', level: spec.level, value: spec.value, threshold: spec.threshold, ts: spec.ts }, now);
    let alert: AlertRecord = {
      ...core,
      id: newAlertId(),
      ruleId: spec.ruleId,
      assetId: spec.assetId,
      sensorId: spec.sensorId,
      metric: spec.metric,
      startedAt: now,
      ruleName: spec.ruleName,
      assetName: spec.assetName,
      assetType: spec.assetType,
      street: spec.street,
      message: spec.message ?? '',
      plan: spec.plan,
      escalationPolicy: spec.policy?.id ?? null,
      lastTier: null,
      heldNotice: null,
    };
    if (spec.message === undefined) alert.message = this.renderMessage(alert, rule);
    this.store.insertAlert(alert);
    this.notifier.recordEvent(alert, firing, effects);
    const hold = this.holds.holdOf(alert, now);
    if (hold) this.holds.recordHeld(alert, hold, 'firing', now);
    if (spec.policy) alert = this.escalate(alert, spec.policy, scheduleFrom(spec.policy, alert.id, now, 0), now, effects);
    const level = alert.level;
    effects.push(() => this.fired.inc({ level }));
    this.afterChange(effects);
    return alert;
  }

  applyTransition(before: AlertRecord, t: Transition<AlertRecord>, now: number, effects: Effect[]): AlertRecord {
    let alert = t.alert;
    const event = t.event;
    if ((event.type === 'level_raised' || event.type === 'level_dropped') && alert.ruleId !== DELIVERY_FAILED_RULE) {
      alert = { ...alert, message: this.renderMessage(alert, this.ctx.options.rules(alert.ruleId)) };
    }
    const hold = this.holds.holdOf(alert, now);
    switch (event.type) {
      case 'level_raised': {
        const rule = this.ctx.options.rules(alert.ruleId);
        const currentPolicy = before.escalationPolicy ? this.escalations.get(before.escalationPolicy) : undefined;
        const plan = planRaise({
          alertId: alert.id,
          now,
          wasAcknowledged: before.state === 'acknowledged',
          currentPolicy,
          currentSchedule: this.store.getSchedule(alert.id),
          newPolicy: rule ? this.policyFor(rule.escalation, alert.level, alert.ruleId) : undefined,
          notifiedSoFar: this.store.notifiedTargets(alert.id),
        });
        const tier = plan.rearmed ? 0 : Math.max(alert.lastTier ?? 0, 0);
        if (hold) {
          // Sent when the hold ends, to those notified by then plus the new level's tier 0.
          alert = { ...alert, escalationPolicy: plan.policyId, heldNotice: 'level_raised' };
          this.store.updateAlert(alert);
          this.notifier.recordEvent(alert, event, effects);
          this.holds.recordHeld(alert, hold, 'level_raised', now);
        } else {
          alert = { ...alert, escalationPolicy: plan.policyId, lastTier: plan.targets.length > 0 ? tier : alert.lastTier, heldNotice: null };
          this.store.updateAlert(alert);
          this.notifier.recordEvent(alert, event, effects);
          this.notifier.enqueue(alert, 'level_raised', tier, plan.targets, now, effects);
        }
        const policy = plan.policyId ? this.escalations.get(plan.policyId) : undefined;
        if (policy) alert = this.escalate(alert, policy, plan.schedule, now, effects);
        else this.putSchedule(alert.id, undefined, effects);
        break;
      }
      case 'acknowledged':
      case 'resolved': {
        if (event.type === 'acknowledged') this.onAcknowledged?.(alert, now, effects);
        const notified = this.store.notifiedTargets(alert.id);
        if (hold) {
          // Those notified before the hold hear of it when the hold ends; nobody else needs to.
          alert = { ...alert, heldNotice: notified.length > 0 ? event.type : null };
          this.store.updateAlert(alert);
          this.notifier.recordEvent(alert, event, effects);
          if (notified.length > 0) this.holds.recordHeld(alert, hold, event.type, now);
          this.putSchedule(alert.id, undefined, effects);
          break;
        }
        alert = { ...alert, heldNotice: null };
        this.store.updateAlert(alert);
        this.notifier.recordEvent(alert, event, effects);
        this.putSchedule(alert.id, undefined, effects);
        this.notifier.enqueue(alert, event.type, alert.lastTier ?? 0, notified, now, effects);
        break;
      }
      case 'level_dropped':
        this.store.updateAlert(alert);
        this.notifier.recordEvent(alert, event, effects);
        break;
      case 'firing':
        throw new Error('an open alert cannot fire again');
    }
    this.afterChange(effects);
    return alert;
  }

  /** Notifies every step of the schedule that is due now and stores what remains. */
  escalate(alert: AlertRecord, policy: EscalationConfig, schedule: EscalationSchedule | undefined, now: number, effects: Effect[]): AlertRecord {
    if (this.holds.holdOf(alert, now)) {
      // Held: due steps wait for the end of the hold; the schedule is kept as it is.
      this.putSchedule(alert.id, schedule, effects);
      return alert;
    }
    const { steps, next } = dueSteps(policy, schedule, now);
    let current = alert;
    for (const step of steps) current = this.notifyStep(current, step, now, effects);
    if (steps.length > 0) this.store.updateAlert(current);
    this.putSchedule(alert.id, next, effects);
    return current;
  }

  private notifyStep(alert: AlertRecord, step: EscalationStep, now: number, effects: Effect[]): AlertRecord {
    const next = { ...alert, lastTier: Math.max(alert.lastTier ?? 0, step.tier) };
    if (step.event !== 'firing') {
      this.notifier.recordNotificationEvent(next, step.event, step.tier, now, effects, { due_at: new Date(step.dueAt).toISOString() });
    }
    this.notifier.enqueue(next, step.event, step.tier, step.targets, now, effects);
    return next;
  }

  putSchedule(alertId: string, schedule: EscalationSchedule | undefined, effects: Effect[]): void {
    if (schedule) this.store.putSchedule(schedule);
    else this.store.deleteSchedule(alertId);
    effects.push(() => this.armEscalations());
  }

  afterChange(effects: Effect[]): void {
    effects.push(() => this.refreshOpenCounts());
  }

  refreshOpenCounts(): void {
    this.openCounts = this.store.openCountsByLevel();
  }

  private policyFor(ref: EscalationRef | undefined, level: Level, ruleId: string): EscalationConfig | undefined {
    const id = selectPolicyId(ref, level);
    if (id === undefined) return undefined;
    const policy = this.escalations.get(id);
    if (!policy) this.logger.warn({ rule_id: ruleId, escalation: id }, 'rule names an unknown escalation; the alert is recorded but not notified');
    return policy;
  }

  private renderMessage(alert: AlertRecord, rule: RuleInfo | undefined): string {
    const vars: MessageVars = {
      rule_id: alert.ruleId,
      rule_name: alert.ruleName,
      asset_id: alert.assetId,
      asset_name: alert.assetName,
      asset_type: alert.assetType,
      street: alert.street,
      sensor_id: alert.sensorId,
      metric: alert.metric,
      value: alert.value,
      unit: this.ctx.options.units(alert.metric),
      level: alert.level,
      level_name: LEVEL_NAMES_ZH[alert.level],
      threshold: alert.threshold === null ? '' : Array.isArray(alert.threshold) ? `${alert.threshold[0]}~${alert.threshold[1]}` : alert.threshold,
    };
    try {
      return this.ctx.options.renderMessage(rule?.message, vars);
    } catch (error) {
      this.logger.warn({ err: error, rule_id: alert.ruleId }, 'rendering the alert message failed; using a plain one');
      return `${alert.ruleName}: ${alert.assetName} ${alert.sensorId} ${alert.metric}=${alert.value}`;
    }
  }

  /** Counts an alert opened other than by openFrom (the record of an alerts.db outage). */
  countFired(level: Level): void {
    this.fired.inc({ level });
  }
}
