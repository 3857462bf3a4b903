/**
 * The disposal loop (contract: Departments, on-call schedules and the disposal loop): each alert's
 * case moves through case-machine.ts; every step is recorded, in the same transaction as its
 * outbox rows, as a timeline event with `actor`, `note` and `at` (and for dispatch the
 * department, work order id and due time), published on MQTT and written to alert_events.
 *
 * Who hears of a step:
 * - `dispatched`: the department, through its `notify`, with `work_order` and its phone link;
 * - `overdue` (a work order not closed by its due time, once): the department again (with the
 *   link) and the asset's `authorities` (without it);
 * - every step: the webhooks the alert was notified to so far (without the link).
 * Verifying, dismissing, dispatching or closing a case whose alert is still firing acknowledges
 * the alert first (escalation stops). An acknowledged case neither dispatched nor closed within its
 * escalation's `ack_timeout` escalates again: the tier after the last one notified, then the next
 * one after another ack_timeout, until the last tier was notified.
 * The timers (work orders due, ack deadlines) live in alerts.db, so a restart resumes them.
 * Over 500 lines: every step's check, record and notification stay together so that each move
 * reads as one transaction; the pure parts are already in case-machine.ts and recipients.ts.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import { formatDuration, parseDuration } from '../lib/duration.js';
import { isValidId } from '../lib/ids.js';
import type { Level } from '../lib/levels.js';
import type { Logger } from '../lib/logger.js';
import type { AlertContext, Effect } from './alert-types.js';
import { isCaseOpen, moveCase, NEW_CASE, type CaseEventType, type CaseInput, type DismissReason } from './case-machine.js';
import type { NotifyTarget } from './config.js';
import { DueTimer } from './due-timer.js';
import { AlertError } from './errors.js';
import { mergeTargets } from './escalation.js';
import type { WorkOrderBody } from './event-body.js';
import type { Notifier } from './notifier.js';
import { onCallNowAndNext } from './oncall.js';
import type { AlertRecord, AlertStore, CaseRecord, WorkOrderFilter, WorkOrderRecord, WorkOrderStatus } from './store.js';
import type { Transitions } from './transitions.js';
import { newNonce, signWorkOrderToken, verifyWorkOrderToken, WORK_ORDER_LINK_GRACE_MS } from './work-order-token.js';

/** Due times of a dispatch when neither the request nor the rule gives one. */
export const DEFAULT_DUE_MS: Readonly<Record<Level, number>> = { red: 3_600_000, orange: 4 * 3_600_000, yellow: 86_400_000, blue: 3 * 86_400_000 };
/** The longest due time a dispatch may set. */
export const MAX_DUE_MS = 90 * 86_400_000;
/** The longest on-call override. */
export const MAX_OVERRIDE_MS = 90 * 86_400_000;

export interface StepInput {
  by: string;
  note?: string;
}

export interface DispatchInput extends StepInput {
  /** A department id, or `owner` (the asset's owner); default: the rule's dispatch default, else owner. */
  department?: string;
  /** A duration (`30m`) or an RFC 3339 time; default: the rule's due time for the level. */
  due?: string;
}

export interface CloseInput extends StepInput {
  outcome?: string;
}

export interface WorkOrderView {
  id: string;
  alert_id: string;
  department: string;
  department_name: string;
  status: WorkOrderStatus;
  note: string | null;
  created_by: string;
  created_at: string;
  due_at: string;
  overdue: boolean;
  arrived_at: string | null;
  closed_at: string | null;
  closed_by: string | null;
  outcome: string | null;
}

export interface OnCallMemberView {
  member: string;
  name: string;
  from: string;
  until: string;
  override_id?: string;
}

export interface OnCallView {
  schedule: string;
  time_zone: string;
  current: OnCallMemberView;
  next: OnCallMemberView;
}

export interface OverrideView {
  id: string;
  schedule: string;
  member: string;
  starts_at: string;
  ends_at: string;
  created_by: string;
  created_at: string;
}

/** What the phone page of a work-order link shows. */
export type WorkOrderLinkState =
  | { kind: 'invalid' }
  | { kind: 'expired' }
  | { kind: 'closed'; order: WorkOrderView; alert: AlertRecord }
  | { kind: 'valid'; order: WorkOrderView; alert: AlertRecord; notes: Array<{ at: string; type: string; actor: string; note: string }> };

export type WorkOrderAction = 'arrive' | 'feedback' | 'close';
export const WORK_ORDER_ACTIONS: readonly WorkOrderAction[] = ['arrive', 'feedback', 'close'];

export type WorkOrderLinkResult = WorkOrderLinkState | { kind: 'done'; action: WorkOrderAction; order: WorkOrderView; alert: AlertRecord };

const iso = (ms: number) => new Date(ms).toISOString();
const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));

function newWorkOrderId(): string {
  return `wo_${randomBytes(10).toString('hex')}`;
}

function newOverrideId(): string {
  return `ov_${randomBytes(8).toString('hex')}`;
}

export class Cases {
  private readonly store: AlertStore;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly timer: DueTimer;
  private running = false;

  constructor(
    private readonly ctx: AlertContext,
    private readonly transitions: Transitions,
    private readonly notifier: Notifier,
    /** The key that signs links (the acknowledgement links' key). */
    private readonly key: () => Buffer,
  ) {
    this.store = ctx.store;
    this.clock = ctx.clock;
    this.logger = ctx.logger.child({ part: 'cases' });
    this.timer = new DueTimer(ctx.clock, () => this.run());
  }

  start(): void {
    this.running = true;
    this.run();
  }

  stop(): void {
    this.running = false;
    this.timer.clear();
  }

  caseOf(alertId: string): CaseRecord {
    return this.store.getCase(alertId) ?? { ...NEW_CASE, alertId, updatedAt: 0, ackDeadline: null };
  }

  // ---- steps ----

  /** The alert was acknowledged (API, link or a step below): the case takes it on and the ack timeout starts. */
  acknowledged(alert: AlertRecord, now: number, effects: Effect[]): void {
    const current = this.caseOf(alert.id);
    const r = moveCase(current, { kind: 'acknowledge' });
    if (!r.ok) return;
    // Acknowledged again after a raise re-armed escalation: the ack timeout starts over.
    const waiting = r.move.case.status === 'acknowledged' || r.move.case.status === 'verified';
    const policy = alert.escalationPolicy ? this.ctx.escalations.get(alert.escalationPolicy) : undefined;
    const deadline = waiting && policy?.ack_timeout !== undefined && policy.ack_timeout > 0 ? now + policy.ack_timeout : null;
    if (r.move.case.status === current.status && deadline === current.ackDeadline) return;
    this.store.putCase({ ...current, ...r.move.case, alertId: alert.id, updatedAt: now, ackDeadline: deadline });
    if (deadline !== null) effects.push(() => this.arm());
  }

  verify(alertId: string, input: StepInput): AlertRecord {
    return this.step(alertId, { kind: 'verify' }, input, {});
  }

  dismiss(alertId: string, reason: DismissReason, input: StepInput): AlertRecord {
    return this.step(alertId, { kind: 'dismiss', reason }, input, { reason });
  }

  close(alertId: string, input: CloseInput): AlertRecord {
    return this.step(alertId, { kind: 'close' }, input, input.outcome ? { outcome: input.outcome } : {}, (order, now) => ({
      ...order,
      status: 'closed',
      closedAt: now,
      closedBy: input.by,
      outcome: input.outcome ?? null,
    }));
  }

  /** Creates a work order for a department and notifies it with the phone link. */
  dispatch(alertId: string, input: DispatchInput): { alert: AlertRecord; workOrder: WorkOrderView } {
    const now = this.clock.now();
    const before = this.store.getAlert(alertId);
    if (!before) throw new AlertError('alert_not_found', `no alert with id "${alertId}"`);
    const defaults = this.ctx.options.dispatchDefaults?.(before.ruleId);
    let department = input.department ?? defaults?.department ?? 'owner';
    if (department === 'owner') {
      const owner = this.ctx.options.assetDepartments?.(before.assetId)?.owner;
      if (!owner) throw new AlertError('invalid_request', `"department": asset ${before.assetId} has no owner; name a department`);
      department = owner;
    }
    if (!isValidId(department) || !this.ctx.departments.has(department)) throw new AlertError('department_not_found', `no department with id "${department}"`);
    const dueAt = this.dueAt(input.due, defaults?.due[before.level] ?? DEFAULT_DUE_MS[before.level], now);
    const workOrderId = newWorkOrderId();
    let order: WorkOrderRecord | undefined;
    this.checkMove(before, { kind: 'dispatch', department, workOrderId });
    const alert = this.transitions.commit((effects) => {
      const alert = this.takeOn(before.id, input.by, effects);
      const current = this.caseOf(alert.id);
      const r = moveCase(current, { kind: 'dispatch', department, workOrderId });
      if (!r.ok) throw new AlertError('illegal_case_move', r.error.message, r.error.status);
      order = {
        id: workOrderId,
        alertId: alert.id,
        department,
        status: 'dispatched',
        note: input.note ?? null,
        createdBy: input.by,
        createdAt: now,
        dueAt,
        nonce: newNonce(),
        expiresAt: dueAt + WORK_ORDER_LINK_GRACE_MS,
        arrivedAt: null,
        closedAt: null,
        closedBy: null,
        outcome: null,
        overdueAt: null,
      };
      this.store.insertWorkOrder(order);
      this.store.putCase({ ...current, ...r.move.case, alertId: alert.id, updatedAt: now, ackDeadline: null });
      this.record(alert, 'dispatched', r.move.previousStatus, input.by, input.note, now, effects, { department, work_order_id: workOrderId, due_at: iso(dueAt) });
      this.notifyStep(alert, 'dispatched', order, now, effects);
      effects.push(() => this.arm());
      return alert;
    });
    return { alert, workOrder: this.workOrderView(order!) };
  }

  private dueAt(due: string | undefined, fallbackMs: number, now: number): number {
    if (due === undefined) return now + fallbackMs;
    const ms = parseDuration(due);
    if (ms !== undefined) {
      if (ms <= 0 || ms > MAX_DUE_MS) throw new AlertError('invalid_request', `"due" must be longer than 0 and at most ${formatDuration(MAX_DUE_MS)}`);
      return now + ms;
    }
    const at = /^\d{4}-\d{2}-\d{2}T/.test(due) ? Date.parse(due) : NaN;
    if (!Number.isFinite(at)) throw new AlertError('invalid_request', '"due" must be a duration such as 2h or an RFC 3339 time');
    if (at <= now || at > now + MAX_DUE_MS) throw new AlertError('invalid_request', `"due" must be in the future and at most ${formatDuration(MAX_DUE_MS)} ahead`);
    return at;
  }

  /**
   * Judges a move before anything is written: a step on a firing alert acknowledges it first, so
   * a `new` case is judged as `acknowledged` then; the error names the status as it is now.
   */
  private checkMove(alert: AlertRecord, input: CaseInput): void {
    const current = this.caseOf(alert.id);
    const effective = alert.state === 'firing' && current.status === 'new' ? { ...current, status: 'acknowledged' as const } : current;
    const check = moveCase(effective, input);
    if (!check.ok)
      throw new AlertError('illegal_case_move', `cannot ${input.kind === 'arrive' ? 'arrive on site for' : input.kind} a case that is ${current.status.replace('_', ' ')}`, current.status);
  }

  /** Acknowledges a still firing alert inside the current transaction (a step takes it on). */
  private takeOn(alertId: string, by: string, effects: Effect[]): AlertRecord {
    const alert = this.store.getAlert(alertId);
    if (!alert) throw new AlertError('alert_not_found', `no alert with id "${alertId}"`);
    if (alert.state !== 'firing') return alert;
    return this.transitions.operatorTransition(alertId, { kind: 'acknowledge', by }, effects);
  }

  /** One step of the loop through the API, in one transaction. */
  private step(alertId: string, input: CaseInput, action: StepInput, detail: Record<string, unknown>, updateOrder?: (order: WorkOrderRecord, now: number) => WorkOrderRecord): AlertRecord {
    const now = this.clock.now();
    return this.transitions.commit((effects) => {
      const existing = this.store.getAlert(alertId);
      if (!existing) throw new AlertError('alert_not_found', `no alert with id "${alertId}"`);
      this.checkMove(existing, input);
      const alert = this.takeOn(alertId, action.by, effects);
      const current = this.caseOf(alertId);
      const r = moveCase(current, input);
      if (!r.ok) throw new AlertError('illegal_case_move', r.error.message, r.error.status);
      if (r.move.event === null) return alert;
      const next: CaseRecord = {
        ...current,
        ...r.move.case,
        alertId,
        updatedAt: now,
        ackDeadline: isCaseOpen(r.move.case.status) && r.move.case.status !== 'dispatched' ? current.ackDeadline : null,
      };
      this.store.putCase(next);
      let order = current.workOrderId ? this.store.getWorkOrder(current.workOrderId) : undefined;
      if (order && updateOrder && order.status !== 'closed') {
        order = updateOrder(order, now);
        this.store.updateWorkOrder(order);
      }
      this.record(alert, r.move.event, r.move.previousStatus, action.by, action.note, now, effects, { ...detail, ...(order ? { work_order_id: order.id } : {}) });
      this.notifyStep(alert, r.move.event, undefined, now, effects);
      effects.push(() => this.arm());
      return alert;
    });
  }

  /** Records a step on the timeline, publishes it and writes its alert_events point (after the commit). */
  private record(alert: AlertRecord, type: CaseEventType, previous: string, actor: string, note: string | undefined, now: number, effects: Effect[], detail: Record<string, unknown>): void {
    const status = this.caseOf(alert.id).status;
    this.store.appendTimeline({
      alertId: alert.id,
      at: now,
      kind: 'event',
      type,
      level: alert.level,
      state: alert.state,
      tier: null,
      channel: null,
      deliveryId: null,
      detail: { actor, note: note ?? '', status, previous_status: previous, ...detail },
    });
    this.notifier.publishEvent(alert, type, alert.lastTier ?? 0, now, effects, actor);
  }

  /**
   * The notifications of a step: the work order's department (with the link) for dispatched and
   * overdue, the authorities for overdue, and the webhooks notified so far.
   */
  private notifyStep(alert: AlertRecord, event: CaseEventType, order: WorkOrderRecord | undefined, now: number, effects: Effect[]): void {
    const tier = alert.lastTier ?? 0;
    const covered = new Set<string>();
    if (order && (event === 'dispatched' || event === 'overdue')) {
      const department = this.ctx.departments.get(order.department);
      if (department) {
        const targets = this.notifier.recipients.expand(department.notify);
        for (const t of targets) covered.add(t.channel);
        this.notifier.enqueue(alert, event, tier, targets, now, effects, { workOrder: this.workOrderBody(order) });
      } else this.logger.warn({ department: order.department, work_order_id: order.id }, "the work order's department is no longer configured; it is not notified");
      if (event === 'overdue') {
        const authorities = this.ctx.options.assetDepartments?.(alert.assetId)?.authorities ?? [];
        const targets = mergeTargets(
          ...authorities.flatMap((id) => {
            const d = this.ctx.departments.get(id);
            return d ? [this.notifier.recipients.expand(d.notify)] : [];
          }),
        ).filter((t) => !covered.has(t.channel));
        for (const t of targets) covered.add(t.channel);
        if (targets.length > 0) this.notifier.enqueue(alert, event, tier, targets, now, effects);
      }
    }
    const hooks: NotifyTarget[] = this.store.notifiedTargets(alert.id).filter((t) => this.ctx.channelConfigs.get(t.channel)?.type === 'webhook' && !covered.has(t.channel));
    if (hooks.length > 0) this.notifier.enqueue(alert, event, tier, hooks, now, effects);
  }

  private workOrderBody(order: WorkOrderRecord): WorkOrderBody {
    const token = signWorkOrderToken(this.key(), { workOrderId: order.id, department: order.department, expiresAt: order.expiresAt, nonce: order.nonce });
    return { id: order.id, department: order.department, due_at: iso(order.dueAt), url: `${this.ctx.options.publicUrl.replace(/\/+$/, '')}/wo/${token}` };
  }

  // ---- timers ----

  /** Marks due work orders overdue and escalates cases past their ack timeout; re-arms. */
  run(): void {
    if (!this.running) return;
    const now = this.clock.now();
    let due: WorkOrderRecord[] = [];
    let deadlines: CaseRecord[] = [];
    try {
      due = this.store.dueWorkOrders(now);
      deadlines = this.store.dueAckDeadlines(now);
    } catch (error) {
      this.logger.error({ err: error }, 'reading due work orders and ack deadlines failed');
    }
    for (const order of due) {
      try {
        this.transitions.commit((effects) => this.overdue(order.id, now, effects));
      } catch (error) {
        this.logger.error({ err: error, work_order_id: order.id }, 'marking a work order overdue failed');
      }
    }
    for (const c of deadlines) {
      try {
        this.transitions.commit((effects) => this.ackTimedOut(c.alertId, now, effects));
      } catch (error) {
        this.logger.error({ err: error, alert_id: c.alertId }, 'escalating a case past its ack timeout failed');
      }
    }
    this.arm();
  }

  arm(): void {
    if (!this.running) return;
    try {
      const next = [this.store.nextWorkOrderDue(), this.store.nextAckDeadline()].filter((t): t is number => t !== undefined);
      this.timer.arm(next.length > 0 ? Math.min(...next) : undefined);
    } catch (error) {
      this.logger.error({ err: error }, 'reading the next work-order due time failed');
    }
  }

  private overdue(orderId: string, now: number, effects: Effect[]): void {
    const found = this.store.getWorkOrder(orderId);
    if (!found) return;
    // The alert first (locked in a shared store), then the order as it is now: two instances
    // that both believe they lead mark it overdue once.
    const alert = this.store.getAlert(found.alertId);
    const order = this.store.getWorkOrder(orderId);
    if (!order || order.status === 'closed' || order.overdueAt !== null) return;
    this.store.updateWorkOrder({ ...order, overdueAt: now });
    if (!alert) return;
    const current = this.caseOf(alert.id);
    const r = moveCase(current, { kind: 'overdue' });
    if (!r.ok || current.workOrderId !== order.id) return;
    this.store.appendTimeline({
      alertId: alert.id,
      at: now,
      kind: 'event',
      type: 'overdue',
      level: alert.level,
      state: alert.state,
      tier: null,
      channel: null,
      deliveryId: null,
      detail: { actor: '', note: '', status: current.status, previous_status: current.status, department: order.department, work_order_id: order.id, due_at: iso(order.dueAt) },
    });
    this.notifier.publishEvent(alert, 'overdue', alert.lastTier ?? 0, now, effects, '');
    this.notifyStep(alert, 'overdue', order, now, effects);
  }

  private ackTimedOut(alertId: string, now: number, effects: Effect[]): void {
    // The alert first (locked in a shared store), then its case as it is now.
    const alert = this.store.getAlert(alertId);
    const current = this.store.getCase(alertId);
    if (!current || current.ackDeadline === null || current.ackDeadline > now) return;
    const policy = alert?.escalationPolicy ? this.ctx.escalations.get(alert.escalationPolicy) : undefined;
    const stillWaiting = current.status === 'acknowledged' || current.status === 'verified';
    // A firing alert (raised after its acknowledgement) escalates by its schedule instead.
    if (!alert || !policy || !stillWaiting || alert.state !== 'acknowledged') {
      this.store.putCase({ ...current, ackDeadline: null });
      return;
    }
    const tier = Math.min((alert.lastTier ?? -1) + 1, policy.tiers.length - 1);
    const more = tier < policy.tiers.length - 1 && policy.ack_timeout !== undefined;
    this.store.putCase({ ...current, ackDeadline: more ? now + policy.ack_timeout! : null });
    const next: AlertRecord = { ...alert, lastTier: Math.max(alert.lastTier ?? 0, tier) };
    this.store.updateAlert(next);
    this.notifier.recordNotificationEvent(next, 'escalated', tier, now, effects, { reason: 'ack_timeout', case_status: current.status, acknowledged_by: alert.acknowledgedBy });
    this.notifier.enqueue(next, 'escalated', tier, policy.tiers[tier]!.notify, now, effects);
  }

  // ---- the phone page ----

  private checkLink(token: string, now: number): { kind: 'invalid' } | { kind: 'expired' } | { kind: 'ok'; order: WorkOrderRecord; alert: AlertRecord } {
    const check = verifyWorkOrderToken(this.key(), token, now);
    if (!check.ok) return check.reason === 'expired' ? { kind: 'expired' } : { kind: 'invalid' };
    const order = this.store.getWorkOrder(check.claims.workOrderId);
    if (!order || order.nonce !== check.claims.nonce || order.department !== check.claims.department) return { kind: 'invalid' };
    const alert = this.store.getAlert(order.alertId);
    if (!alert) return { kind: 'invalid' };
    return { kind: 'ok', order, alert };
  }

  linkPage(token: string): WorkOrderLinkState {
    const link = this.checkLink(token, this.clock.now());
    if (link.kind !== 'ok') return link;
    const view = this.workOrderView(link.order);
    if (!this.orderOpen(link.order)) return { kind: 'closed', order: view, alert: link.alert };
    const notes = this.store
      .timeline(link.alert.id)
      .filter((e) => e.kind === 'event' && typeof e.detail.note === 'string' && e.detail.note !== '')
      .map((e) => ({
        at: iso(e.at),
        type: e.type,
        actor: typeof e.detail.actor === 'string' ? e.detail.actor : typeof e.detail.by === 'string' ? e.detail.by : '',
        note: e.detail.note as string,
      }));
    return { kind: 'valid', order: view, alert: link.alert, notes };
  }

  /** arrive, feedback or close through the link; the actor is the link's department. */
  actByLink(token: string, action: WorkOrderAction, note: string | undefined): WorkOrderLinkResult {
    const now = this.clock.now();
    const link = this.checkLink(token, now);
    if (link.kind !== 'ok') return link;
    if (!this.orderOpen(link.order)) return { kind: 'closed', order: this.workOrderView(link.order), alert: link.alert };
    const actor = link.order.department;
    const input: CaseInput = action === 'arrive' ? { kind: 'arrive' } : action === 'feedback' ? { kind: 'feedback' } : { kind: 'close' };
    const update = (order: WorkOrderRecord, at: number): WorkOrderRecord =>
      action === 'arrive'
        ? { ...order, status: 'on_site', arrivedAt: order.arrivedAt ?? at }
        : action === 'close'
          ? { ...order, status: 'closed', closedAt: at, closedBy: actor, outcome: note ?? null }
          : order;
    this.step(link.alert.id, input, { by: actor, ...(note ? { note } : {}) }, {}, update);
    const order = this.store.getWorkOrder(link.order.id)!;
    return { kind: 'done', action, order: this.workOrderView(order), alert: this.store.getAlert(link.alert.id)! };
  }

  /** A work order is open while it is not closed and its case still has it as the current one. */
  private orderOpen(order: WorkOrderRecord): boolean {
    if (order.status === 'closed') return false;
    const c = this.caseOf(order.alertId);
    return c.workOrderId === order.id && (c.status === 'dispatched' || c.status === 'on_site');
  }

  // ---- views ----

  workOrderView(order: WorkOrderRecord): WorkOrderView {
    const status: WorkOrderStatus = order.status !== 'closed' && !this.orderOpen(order) ? 'closed' : order.status;
    return {
      id: order.id,
      alert_id: order.alertId,
      department: order.department,
      department_name: this.ctx.departments.get(order.department)?.name ?? order.department,
      status,
      note: order.note,
      created_by: order.createdBy,
      created_at: iso(order.createdAt),
      due_at: iso(order.dueAt),
      overdue: order.overdueAt !== null || (status !== 'closed' && order.dueAt <= this.clock.now()) || (order.closedAt !== null && order.closedAt > order.dueAt),
      arrived_at: isoOrNull(order.arrivedAt),
      closed_at: isoOrNull(order.closedAt),
      closed_by: order.closedBy,
      outcome: order.outcome,
    };
  }

  listWorkOrders(filter: WorkOrderFilter): WorkOrderView[] {
    if (filter.department !== undefined && !this.ctx.departments.has(filter.department)) throw new AlertError('department_not_found', `no department with id "${filter.department}"`);
    return this.store.listWorkOrders(filter).map((o) => this.workOrderView(o));
  }

  onCall(): OnCallView[] {
    const now = this.clock.now();
    const name = (id: string) => this.ctx.contacts.get(id)?.name ?? id;
    const member = (span: { member: string; from: number; until: number; overrideId?: string }): OnCallMemberView => ({
      member: span.member,
      name: name(span.member),
      from: iso(span.from),
      until: iso(span.until),
      ...(span.overrideId ? { override_id: span.overrideId } : {}),
    });
    return [...this.ctx.schedules.values()].map((s) => {
      const { current, next } = onCallNowAndNext(s, this.notifier.recipients.overrides(s.id, now), now);
      return { schedule: s.id, time_zone: s.time_zone, current: member(current), next: member(next) };
    });
  }

  createOverride(scheduleId: string, input: { member: string; starts_at: string; ends_at: string }, by: string): OverrideView {
    const now = this.clock.now();
    if (!this.ctx.schedules.has(scheduleId)) throw new AlertError('schedule_not_found', `no schedule with id "${scheduleId}"`);
    if (!this.ctx.contacts.has(input.member)) throw new AlertError('invalid_request', `"member": no contact with id "${input.member}"`);
    const startsAt = Date.parse(input.starts_at);
    const endsAt = Date.parse(input.ends_at);
    if (!(endsAt > startsAt)) throw new AlertError('invalid_request', '"ends_at" must be after "starts_at"');
    if (endsAt <= now) throw new AlertError('invalid_request', '"ends_at" must be in the future');
    if (endsAt - startsAt > MAX_OVERRIDE_MS) throw new AlertError('invalid_request', `an override lasts at most ${formatDuration(MAX_OVERRIDE_MS)}`);
    const record = { id: newOverrideId(), scheduleId, member: input.member, startsAt, endsAt, createdAt: now, createdBy: by };
    this.store.insertOverride(record);
    return { id: record.id, schedule: scheduleId, member: record.member, starts_at: iso(startsAt), ends_at: iso(endsAt), created_by: by, created_at: iso(now) };
  }

  /** The alert view's case part is in AlertViews; this gives the current work order of an alert. */
  currentWorkOrder(alertId: string): WorkOrderView | undefined {
    const id = this.caseOf(alertId).workOrderId;
    const order = id ? this.store.getWorkOrder(id) : undefined;
    return order && this.workOrderView(order);
  }
}
