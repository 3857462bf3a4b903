/**
 * The case state machine: how an alert is worked through the disposal loop (监测报警 → 研判核实 →
 * 派单处置 → 现场反馈 → 办结归档), beside the alert's signal state (state-machine.ts). Pure: no I/O,
 * no clock of its own.
 *
 *   new ----------acknowledge--> acknowledged            (the alert's own `acknowledged` event)
 *   new | acknowledged --verify--> verified               event `verified`
 *   new | acknowledged | verified --dismiss(reason)--> dismissed   event `dismissed`   (final)
 *   acknowledged | verified --dispatch(department)--> dispatched   event `dispatched`  (a work order)
 *   dispatched --arrive--> on_site                         event `on_site`
 *   dispatched | on_site --feedback--> (unchanged)         event `feedback`
 *   dispatched | on_site --overdue--> (unchanged)          event `overdue` (the platform, at due_at)
 *   verified | dispatched | on_site --close--> closed      event `closed`     (final)
 *
 * Verifying or dismissing a new case takes it on as acknowledging does (the caller also
 * acknowledges the alert, which stops escalation). Acknowledging the alert of a case past `new`
 * leaves the case as it is; arriving again while on site changes nothing. Every other move is illegal and answered
 * with the case's current status (the API's 409). The case does not follow the signal: it stays
 * open after the alert resolves, until it is closed or dismissed.
 */

export const CASE_STATUSES = ['new', 'acknowledged', 'verified', 'dismissed', 'dispatched', 'on_site', 'closed'] as const;
export type CaseStatus = (typeof CASE_STATUSES)[number];

/** Statuses a case never leaves. */
export const FINAL_CASE_STATUSES: readonly CaseStatus[] = ['dismissed', 'closed'];

export const DISMISS_REASONS = ['sensor_fault', 'maintenance', 'test', 'environment', 'duplicate', 'other'] as const;
export type DismissReason = (typeof DISMISS_REASONS)[number];

/** Timeline events of the case (the alert's `acknowledged` covers the case's acknowledgement). */
export const CASE_EVENT_TYPES = ['verified', 'dismissed', 'dispatched', 'on_site', 'feedback', 'closed', 'overdue'] as const;
export type CaseEventType = (typeof CASE_EVENT_TYPES)[number];

export interface CaseCore {
  status: CaseStatus;
  /** The department of the current work order. */
  department: string | null;
  workOrderId: string | null;
  dismissReason: DismissReason | null;
}

export const NEW_CASE: CaseCore = Object.freeze({ status: 'new', department: null, workOrderId: null, dismissReason: null });

export type CaseInput =
  | { kind: 'acknowledge' }
  | { kind: 'verify' }
  | { kind: 'dismiss'; reason: DismissReason }
  | { kind: 'dispatch'; department: string; workOrderId: string }
  | { kind: 'arrive' }
  | { kind: 'feedback' }
  | { kind: 'overdue' }
  | { kind: 'close' };

export type CaseAction = CaseInput['kind'];

/** The statuses each move is legal from. */
export const LEGAL_FROM: Readonly<Record<CaseAction, readonly CaseStatus[]>> = {
  acknowledge: CASE_STATUSES,
  verify: ['new', 'acknowledged'],
  dismiss: ['new', 'acknowledged', 'verified'],
  dispatch: ['acknowledged', 'verified'],
  arrive: ['dispatched', 'on_site'],
  feedback: ['dispatched', 'on_site'],
  overdue: ['dispatched', 'on_site'],
  close: ['verified', 'dispatched', 'on_site'],
};

export interface CaseMove {
  case: CaseCore;
  /** The timeline event of the move; null when the move is legal but changes nothing. */
  event: CaseEventType | null;
  previousStatus: CaseStatus;
}

export type CaseMoveResult = { ok: true; move: CaseMove } | { ok: false; error: { code: 'illegal_case_move'; action: CaseAction; status: CaseStatus; message: string } };

const ACTION_TEXT: Record<CaseAction, string> = {
  acknowledge: 'acknowledge',
  verify: 'verify',
  dismiss: 'dismiss',
  dispatch: 'dispatch',
  arrive: 'arrive on site',
  feedback: 'give feedback on',
  overdue: 'mark overdue',
  close: 'close',
};

/** Applies one move to a case. */
export function moveCase(current: CaseCore, input: CaseInput): CaseMoveResult {
  const from = current.status;
  if (!LEGAL_FROM[input.kind].includes(from)) {
    return { ok: false, error: { code: 'illegal_case_move', action: input.kind, status: from, message: `cannot ${ACTION_TEXT[input.kind]} a case that is ${from.replace('_', ' ')}` } };
  }
  const ok = (next: CaseCore, event: CaseEventType | null): CaseMoveResult => ({ ok: true, move: { case: next, event, previousStatus: from } });
  switch (input.kind) {
    case 'acknowledge':
      return from === 'new' ? ok({ ...current, status: 'acknowledged' }, null) : ok(current, null);
    case 'verify':
      return ok({ ...current, status: 'verified' }, 'verified');
    case 'dismiss':
      return ok({ ...current, status: 'dismissed', dismissReason: input.reason }, 'dismissed');
    case 'dispatch':
      return ok({ ...current, status: 'dispatched', department: input.department, workOrderId: input.workOrderId }, 'dispatched');
    case 'arrive':
      return from === 'on_site' ? ok(current, null) : ok({ ...current, status: 'on_site' }, 'on_site');
    case 'feedback':
      return ok(current, 'feedback');
    case 'overdue':
      return ok(current, 'overdue');
    case 'close':
      return ok({ ...current, status: 'closed' }, 'closed');
  }
}

export function isCaseOpen(status: CaseStatus): boolean {
  return !FINAL_CASE_STATUSES.includes(status);
}
