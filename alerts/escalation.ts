/**
 * Escalation policy arithmetic, pure: which policy applies to an alert, which tier is due when,
 * and what a raise does to the schedule. The alert service persists the schedule these
 * functions compute and arms a DueTimer for the earliest due time.
 *
 * Decisions (contract: Escalation, where it is silent):
 * - Per-level escalation (`{ yellow: street-duty, red: district-emergency }`): the policy of the
 *   alert's level; a level without an entry uses the highest defined level below it; a level
 *   with none at or below it has no escalation (the alert is recorded and published, not notified).
 * - Tier n is due at anchorAt + tiers[n].after; anchorAt is the alert's started_at (platform clock),
 *   or the time of the raise that re-armed the escalation.
 * - After downtime every overdue tier is notified once, in order (none skipped); overdue repeats
 *   are merged into one, and the next repeat keeps the original cadence.
 * - A raise is notified at once (event `level_raised`) to everyone notified so far plus tier 0 of
 *   the policy for the new level, which counts as that policy's tier 0.
 *   If the alert was firing and the policy stays the same, the schedule runs on unchanged (a raise
 *   never delays a tier). If the alert was acknowledged, or the new level has another policy,
 *   escalation re-arms: the policy's tier 1 is due at raise time + tiers[1].after, and so on.
 * - A drop changes nothing in the escalation: the policy in force stays.
 * - Acknowledge and resolve delete the schedule.
 */
import { LEVELS, levelRank, type Level } from '../lib/levels.js';
import type { EscalationRef } from '../rules/config.js';
import type { EscalationSchedule, NotificationEvent } from './store.js';
import type { EscalationConfig, NotifyTarget } from './config.js';

/** The escalation policy id for an alert at `level`; undefined when none applies. */
export function selectPolicyId(ref: EscalationRef | undefined, level: Level): string | undefined {
  if (ref === undefined) return undefined;
  if (typeof ref === 'string') return ref;
  for (let rank = levelRank(level); rank >= 1; rank--) {
    const id = ref[LEVELS[rank - 1]!];
    if (id !== undefined) return id;
  }
  return undefined;
}

/** Merges target lists: one entry per channel, the union of its contacts, in first-seen order. */
export function mergeTargets(...lists: ReadonlyArray<readonly NotifyTarget[]>): NotifyTarget[] {
  const byChannel = new Map<string, string[]>();
  for (const list of lists) {
    for (const target of list) {
      let to = byChannel.get(target.channel);
      if (!to) byChannel.set(target.channel, (to = []));
      for (const contact of target.to) if (!to.includes(contact)) to.push(contact);
    }
  }
  return [...byChannel].map(([channel, to]) => ({ channel, to }));
}

function repeatOf(policy: EscalationConfig): number | undefined {
  return policy.repeat !== undefined && policy.repeat > 0 ? policy.repeat : undefined;
}

/**
 * The schedule of `policy` from tier `fromTier` on, counted from anchorAt; undefined when nothing
 * more will ever be due (every tier notified and no repeat).
 */
export function scheduleFrom(policy: EscalationConfig, alertId: string, anchorAt: number, fromTier: number, repeats = 0): EscalationSchedule | undefined {
  const tiers = policy.tiers;
  const tier = tiers[fromTier];
  if (tier) return { alertId, policyId: policy.id, anchorAt, nextTier: fromTier, nextDueAt: anchorAt + tier.after, repeats };
  const repeat = repeatOf(policy);
  const last = tiers[tiers.length - 1];
  if (repeat === undefined || !last) return undefined;
  return { alertId, policyId: policy.id, anchorAt, nextTier: tiers.length, nextDueAt: anchorAt + last.after + repeat, repeats };
}

export interface EscalationStep {
  /** firing for tier 0, escalated for later tiers, repeated for repeats of the last tier. */
  event: Extract<NotificationEvent, 'firing' | 'escalated' | 'repeated'>;
  tier: number;
  dueAt: number;
  targets: NotifyTarget[];
}

/** The step that is due (schedule.nextDueAt <= now) and the schedule after it. */
export function takeStep(policy: EscalationConfig, schedule: EscalationSchedule, now: number): { step: EscalationStep; next: EscalationSchedule | undefined } {
  const tiers = policy.tiers;
  const tier = tiers[schedule.nextTier];
  if (tier) {
    const step: EscalationStep = {
      event: schedule.nextTier === 0 ? 'firing' : 'escalated',
      tier: schedule.nextTier,
      dueAt: schedule.nextDueAt,
      targets: mergeTargets(tier.notify),
    };
    return { step, next: scheduleFrom(policy, schedule.alertId, schedule.anchorAt, schedule.nextTier + 1, schedule.repeats) };
  }
  const lastIndex = tiers.length - 1;
  const repeat = repeatOf(policy);
  const step: EscalationStep = { event: 'repeated', tier: lastIndex, dueAt: schedule.nextDueAt, targets: mergeTargets(tiers[lastIndex]?.notify ?? []) };
  if (repeat === undefined) return { step, next: undefined };
  // Missed repeats (the platform was down) are merged into this one; the cadence is kept.
  const missed = Math.max(0, Math.floor((now - schedule.nextDueAt) / repeat));
  const nextDueAt = schedule.nextDueAt + (missed + 1) * repeat;
  return { step, next: { ...schedule, nextDueAt, repeats: schedule.repeats + 1 } };
}

/** Takes every step due at `now`, in order. */
export function dueSteps(policy: EscalationConfig, schedule: EscalationSchedule | undefined, now: number): { steps: EscalationStep[]; next: EscalationSchedule | undefined } {
  const steps: EscalationStep[] = [];
  let current = schedule;
  while (current && current.nextDueAt <= now) {
    const { step, next } = takeStep(policy, current, now);
    steps.push(step);
    current = next;
  }
  return { steps, next: current };
}

export interface RaisePlan {
  /** The policy in force after the raise (null: none). */
  policyId: string | null;
  /** Who gets the `level_raised` notification. */
  targets: NotifyTarget[];
  /** The schedule after the raise (undefined: nothing more due). */
  schedule: EscalationSchedule | undefined;
  /** True when escalation was restarted at the raise. */
  rearmed: boolean;
}

/** What a raise does to notifications and escalation (see the module comment). */
export function planRaise(args: {
  alertId: string;
  now: number;
  /** State before the raise. */
  wasAcknowledged: boolean;
  currentPolicy: EscalationConfig | undefined;
  currentSchedule: EscalationSchedule | undefined;
  /** The policy selected for the new level (undefined: none defined for it). */
  newPolicy: EscalationConfig | undefined;
  notifiedSoFar: readonly NotifyTarget[];
}): RaisePlan {
  const policy = args.newPolicy ?? args.currentPolicy;
  if (!policy) return { policyId: null, targets: mergeTargets(args.notifiedSoFar), schedule: undefined, rearmed: false };
  const targets = mergeTargets(args.notifiedSoFar, policy.tiers[0]?.notify ?? []);
  const samePolicy = args.currentPolicy !== undefined && args.currentPolicy.id === policy.id;
  if (samePolicy && !args.wasAcknowledged) {
    let schedule = args.currentSchedule;
    // Tier 0 not notified yet (it has a delay): the raise notification just covered it.
    if (schedule && schedule.nextTier === 0) schedule = scheduleFrom(policy, args.alertId, schedule.anchorAt, 1, schedule.repeats);
    return { policyId: policy.id, targets, schedule, rearmed: false };
  }
  return { policyId: policy.id, targets, schedule: scheduleFrom(policy, args.alertId, args.now, 1), rearmed: true };
}
