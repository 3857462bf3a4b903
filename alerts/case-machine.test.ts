import { describe, expect, it } from 'vitest';
import { CASE_STATUSES, LEGAL_FROM, moveCase, NEW_CASE, type CaseCore, type CaseInput, type CaseStatus } from './case-machine.js';

function at(status: CaseStatus): CaseCore {
  return { ...NEW_CASE, status, ...(status === 'dispatched' || status === 'on_site' ? { department: 'lg-water', workOrderId: 'wo_1' } : {}) };
}

function walk(start: CaseCore, inputs: CaseInput[]): CaseCore {
  return inputs.reduce((c, input) => {
    const r = moveCase(c, input);
    if (!r.ok) throw new Error(r.error.message);
    return r.move.case;
  }, start);
}

const ALL_INPUTS: CaseInput[] = [
  { kind: 'acknowledge' },
  { kind: 'verify' },
  { kind: 'dismiss', reason: 'sensor_fault' },
  { kind: 'dispatch', department: 'lg-gas', workOrderId: 'wo_2' },
  { kind: 'arrive' },
  { kind: 'feedback' },
  { kind: 'overdue' },
  { kind: 'close' },
];

describe('case state machine', () => {
  it('walks the whole loop with one event per step', () => {
    const steps: Array<[CaseInput, CaseStatus, string | null]> = [
      [{ kind: 'acknowledge' }, 'acknowledged', null],
      [{ kind: 'verify' }, 'verified', 'verified'],
      [{ kind: 'dispatch', department: 'lg-water', workOrderId: 'wo_1' }, 'dispatched', 'dispatched'],
      [{ kind: 'feedback' }, 'dispatched', 'feedback'],
      [{ kind: 'arrive' }, 'on_site', 'on_site'],
      [{ kind: 'feedback' }, 'on_site', 'feedback'],
      [{ kind: 'overdue' }, 'on_site', 'overdue'],
      [{ kind: 'close' }, 'closed', 'closed'],
    ];
    let c: CaseCore = NEW_CASE;
    for (const [input, status, event] of steps) {
      const r = moveCase(c, input);
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect(r.move).toEqual({ case: expect.objectContaining({ status }), event, previousStatus: c.status });
      c = r.move.case;
    }
    expect(c).toEqual({ status: 'closed', department: 'lg-water', workOrderId: 'wo_1', dismissReason: null });
  });

  it('dismisses with a reason, also straight from new', () => {
    const r = moveCase(NEW_CASE, { kind: 'dismiss', reason: 'sensor_fault' });
    expect(r).toEqual({ ok: true, move: { case: { status: 'dismissed', department: null, workOrderId: null, dismissReason: 'sensor_fault' }, event: 'dismissed', previousStatus: 'new' } });
  });

  it('verifies straight from new', () => {
    expect(walk(NEW_CASE, [{ kind: 'verify' }]).status).toBe('verified');
  });

  it('acknowledging a case past new, or arriving again, changes nothing and records nothing', () => {
    for (const status of ['verified', 'dispatched', 'on_site', 'closed', 'dismissed'] as const) {
      expect(moveCase(at(status), { kind: 'acknowledge' })).toEqual({ ok: true, move: { case: at(status), event: null, previousStatus: status } });
    }
    expect(moveCase(at('on_site'), { kind: 'arrive' })).toEqual({ ok: true, move: { case: at('on_site'), event: null, previousStatus: 'on_site' } });
  });

  it('refuses illegal moves with the current status', () => {
    expect(moveCase(NEW_CASE, { kind: 'dispatch', department: 'lg-water', workOrderId: 'wo_1' })).toEqual({
      ok: false,
      error: { code: 'illegal_case_move', action: 'dispatch', status: 'new', message: 'cannot dispatch a case that is new' },
    });
    expect(moveCase(at('closed'), { kind: 'close' })).toEqual({
      ok: false,
      error: { code: 'illegal_case_move', action: 'close', status: 'closed', message: 'cannot close a case that is closed' },
    });
    expect(moveCase(at('on_site'), { kind: 'dismiss', reason: 'test' })).toMatchObject({ ok: false, error: { status: 'on_site' } });
    expect(moveCase(at('acknowledged'), { kind: 'close' })).toMatchObject({ ok: false, error: { status: 'acknowledged' } });
  });

  it('allows exactly the moves of the table from every status', () => {
    const table: Record<CaseStatus, string[]> = {
      new: ['acknowledge', 'verify', 'dismiss'],
      acknowledged: ['acknowledge', 'verify', 'dismiss', 'dispatch'],
      verified: ['acknowledge', 'dismiss', 'dispatch', 'close'],
      dismissed: ['acknowledge'],
      dispatched: ['acknowledge', 'arrive', 'feedback', 'overdue', 'close'],
      on_site: ['acknowledge', 'arrive', 'feedback', 'overdue', 'close'],
      closed: ['acknowledge'],
    };
    for (const status of CASE_STATUSES) {
      const legal = ALL_INPUTS.filter((input) => moveCase(at(status), input).ok).map((i) => i.kind);
      expect(legal, status).toEqual(table[status]);
      for (const kind of legal) expect(LEGAL_FROM[kind]).toContain(status);
    }
  });

  it('dismissed and closed cases are final', () => {
    for (const status of ['dismissed', 'closed'] as const) {
      for (const input of ALL_INPUTS) {
        const r = moveCase(at(status), input);
        if (r.ok) expect(r.move.case.status).toBe(status);
      }
    }
  });
});
