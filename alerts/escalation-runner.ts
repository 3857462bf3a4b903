/**
 * The escalation timer: releases held notifications whose hold ended, notifies every due tier
 * and repeat of alerts not held, then re-arms for the next due time or the end of a silence.
 * The schedule lives in alerts.db, so a restart resumes it (overdue tiers are notified at start).
 */
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { AlertContext, Effect } from './alert-types.js';
import type { EscalationConfig, NotifyTarget } from './config.js';
import { DueTimer } from './due-timer.js';
import { mergeTargets } from './escalation.js';
import type { Holds } from './holds.js';
import type { Notifier } from './notifier.js';
import type { AlertRecord, AlertStore, EscalationSchedule, NotificationEvent } from './store.js';
import type { Transitions } from './transitions.js';

export class EscalationRunner {
  private readonly store: AlertStore;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly escalations: ReadonlyMap<string, EscalationConfig>;
  private readonly timer: DueTimer;
  private running = false;

  constructor(
    ctx: AlertContext,
    private readonly transitions: Transitions,
    private readonly holds: Holds,
    private readonly notifier: Notifier,
  ) {
    this.store = ctx.store;
    this.clock = ctx.clock;
    this.logger = ctx.logger;
    this.escalations = ctx.escalations;
    this.timer = new DueTimer(ctx.clock, () => this.run());
  }

  /** Runs what is due now (overdue tiers after a restart) and keeps the timer armed. */
  start(): void {
    this.running = true;
    this.run();
  }

  stop(): void {
    this.running = false;
    this.timer.clear();
  }

  /** Releases ended holds, notifies due tiers, re-arms the timer. */
  run(): void {
    if (!this.running) return;
    const now = this.clock.now();
    let wake: number | undefined;
    const wakeAt = (at: number | undefined) => {
      if (at !== undefined) wake = wake === undefined ? at : Math.min(wake, at);
    };
    this.holds.dropEnded(now);
    try {
      for (const held of this.store.alertsWithHeldNotice()) {
        const hold = this.holds.holdOf(held, now);
        if (hold) {
          wakeAt(hold.until);
          continue;
        }
        try {
          this.transitions.commit((effects) => this.release(held.id, now, effects));
        } catch (error) {
          this.logger.error({ err: error, alert_id: held.id }, 'releasing a held notification failed');
        }
      }
    } catch (error) {
      this.logger.error({ err: error }, 'reading held notifications failed');
    }
    let due: EscalationSchedule[] = [];
    try {
      due = this.store.dueSchedules(now);
    } catch (error) {
      this.logger.error({ err: error }, 'reading the escalation schedule failed');
    }
    for (const found of due) {
      try {
        this.transitions.commit((effects) => {
          const alert = this.store.getAlert(found.alertId);
          if (!alert || alert.state !== 'firing') {
            this.store.deleteSchedule(found.alertId);
            return;
          }
          // Read again after the alert (locked in a shared store): another instance may have
          // escalated, re-armed or acknowledged it since the due list was read.
          const schedule = this.store.getSchedule(alert.id);
          if (!schedule || schedule.nextDueAt > now) return;
          const policy = this.escalations.get(schedule.policyId);
          if (!policy) {
            this.logger.warn({ alert_id: alert.id, escalation: schedule.policyId }, 'escalation policy no longer configured; escalation of this alert stops');
            this.store.deleteSchedule(schedule.alertId);
            return;
          }
          const hold = this.holds.holdOf(alert, now);
          if (hold) {
            wakeAt(hold.until);
            return;
          }
          this.transitions.escalate(alert, policy, schedule, now, effects);
        });
      } catch (error) {
        this.logger.error({ err: error, alert_id: found.alertId }, 'escalating an alert failed');
      }
    }
    try {
      wakeAt(this.store.nextScheduleDueAfter(now));
      this.timer.arm(wake);
    } catch (error) {
      this.logger.error({ err: error }, 'reading the escalation schedule failed');
    }
  }

  /**
   * Arms the escalation timer for the next due step or the next end of a silence (when held
   * notifications may be released); runEscalations() then works out exactly what is due.
   */
  arm(): void {
    if (!this.running) return;
    const now = this.clock.now();
    this.timer.arm(this.holds.nextEnd(now, this.store.nextScheduleDue()));
  }

  /** Sends an alert's held notice, reflecting its state now (see "Holds" in alert-service.ts). */
  private release(alertId: string, now: number, effects: Effect[]): void {
    const current = this.store.getAlert(alertId);
    if (!current || current.heldNotice === null) return;
    const notified = this.store.notifiedTargets(current.id);
    let event: NotificationEvent;
    let targets: NotifyTarget[];
    if (current.state === 'firing') {
      const policy = current.escalationPolicy ? this.escalations.get(current.escalationPolicy) : undefined;
      targets = mergeTargets(notified, policy?.tiers[0]?.notify ?? []);
      event = notified.length > 0 ? 'level_raised' : 'firing';
    } else {
      targets = notified;
      event = current.state;
    }
    const alert: AlertRecord = { ...current, heldNotice: null, lastTier: targets.length > 0 ? Math.max(current.lastTier ?? 0, 0) : current.lastTier, updatedAt: current.updatedAt };
    this.store.updateAlert(alert);
    this.store.appendTimeline({
      alertId: alert.id,
      at: now,
      kind: 'event',
      type: 'released',
      level: alert.level,
      state: alert.state,
      tier: null,
      channel: null,
      deliveryId: null,
      detail: { held: current.heldNotice, event },
    });
    if (targets.length > 0) this.notifier.enqueue(alert, event, alert.lastTier ?? 0, targets, now, effects);
  }
}
