/**
 * What every alert store backend must do (alerts/store.ts), run against each backend in
 * test/support/alert-store.ts. A new backend (PostgreSQL) adds itself there and passes these.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ALERT_T0, sampleAlert } from '../test/support/alert-records.js';
import { ALERT_STORE_BACKENDS, releaseAlertStoreBackends } from '../test/support/alert-store.js';
import { isOpenAlertExists, MAX_LIST_LIMIT, type AlertRecord, type AlertStore } from './store.js';

const T0 = ALERT_T0;
const alert = sampleAlert;

afterAll(() => releaseAlertStoreBackends());

const resolved = (at: number): Partial<AlertRecord> => ({ state: 'resolved', resolvedAt: at, resolvedBy: 'system', resolveReason: 'condition_cleared', updatedAt: at });

function outbox(store: AlertStore, deliveryId: string, alertId: string, extra: { channelId?: string; recipients?: string[]; nextAttemptAt?: number; createdAt?: number } = {}): void {
  store.insertOutbox({
    deliveryId,
    alertId,
    channelId: extra.channelId ?? 'ops-hook',
    recipients: extra.recipients ?? [],
    event: 'firing',
    tier: 0,
    body: `{"delivery_id":"${deliveryId}"}`,
    nextAttemptAt: extra.nextAttemptAt ?? T0,
    createdAt: extra.createdAt ?? T0,
  });
}

describe.each(Object.keys(ALERT_STORE_BACKENDS))('alert store: %s', (backend) => {
  const open = ALERT_STORE_BACKENDS[backend]!;
  let dir: string;
  let store: AlertStore;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'watchpost-store-'));
    store = open(dir);
  });

  afterEach(() => {
    if (store.isOpen) store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps one open alert per (rule, asset, sensor), and lists alerts newest first', () => {
    store.insertAlert(alert('al_1'));
    expect(() => store.insertAlert(alert('al_2'))).toThrow();
    store.updateAlert(alert('al_1', resolved(T0 + 1000)));
    store.insertAlert(alert('al_2', { startedAt: T0 + 2000, level: 'yellow' }));
    store.insertAlert(alert('al_3', { startedAt: T0 + 2000, sensorId: 'strain-02', ruleId: 'slope-tilt' }));
    expect(() => store.updateAlert(alert('al_missing'))).toThrow();

    expect(store.getAlert('al_1')).toEqual(alert('al_1', resolved(T0 + 1000)));
    expect(store.findOpenAlert('bridge-strain', 'lg-bridge-001', 'strain-01')?.id).toBe('al_2');
    expect(store.listAlerts().map((a) => a.id)).toEqual(['al_3', 'al_2', 'al_1']);
    expect(store.listAlerts({ state: 'resolved' }).map((a) => a.id)).toEqual(['al_1']);
    expect(store.listAlerts({ level: 'yellow', assetId: 'lg-bridge-001' }).map((a) => a.id)).toEqual(['al_2']);
    expect(store.listAlerts({ limit: 0 }).map((a) => a.id)).toEqual(['al_3']);
    expect(store.listAlerts({ limit: MAX_LIST_LIMIT + 5 })).toHaveLength(3);
    expect(store.openAlerts().map((a) => a.id)).toEqual(['al_3', 'al_2']);
    expect(store.openAlerts('slope-tilt').map((a) => a.id)).toEqual(['al_3']);
    expect(Object.fromEntries(store.openCountsByLevel())).toEqual({ red: 1, yellow: 1 });
    store.updateAlert(alert('al_2', { startedAt: T0 + 2000, level: 'yellow', heldNotice: 'level_raised', updatedAt: T0 + 3000 }));
    expect(store.alertsWithHeldNotice().map((a) => [a.id, a.heldNotice])).toEqual([['al_2', 'level_raised']]);
  });

  it('commits a transaction whole or not at all', () => {
    expect(() =>
      store.transaction(() => {
        store.insertAlert(alert('al_1'));
        store.appendTimeline({ alertId: 'al_1', at: T0, kind: 'event', type: 'firing', level: 'red', state: 'firing', tier: null, channel: null, deliveryId: null, detail: {} });
        throw new Error('disk full');
      }),
    ).toThrow('disk full');
    expect(store.getAlert('al_1')).toBeUndefined();
    expect(store.timeline('al_1')).toEqual([]);
    expect(store.transaction(() => (store.insertAlert(alert('al_1')), 42))).toBe(42);
    expect(store.getAlert('al_1')?.id).toBe('al_1');
  });

  it('appends timeline entries in order with their detail', () => {
    store.insertAlert(alert('al_1'));
    const a = store.appendTimeline({
      alertId: 'al_1',
      at: T0,
      kind: 'event',
      type: 'firing',
      level: 'red',
      state: 'firing',
      tier: null,
      channel: null,
      deliveryId: null,
      detail: { value: 312.5 },
    });
    const b = store.appendTimeline({
      alertId: 'al_1',
      at: T0,
      kind: 'delivery',
      type: 'queued',
      level: 'red',
      state: 'firing',
      tier: 0,
      channel: 'ops-hook',
      deliveryId: 'd1',
      detail: { recipients: [] },
    });
    expect(b).toBeGreaterThan(a);
    expect(store.timeline('al_1')).toEqual([
      { seq: a, alertId: 'al_1', at: T0, kind: 'event', type: 'firing', level: 'red', state: 'firing', tier: null, channel: null, deliveryId: null, detail: { value: 312.5 } },
      { seq: b, alertId: 'al_1', at: T0, kind: 'delivery', type: 'queued', level: 'red', state: 'firing', tier: 0, channel: 'ops-hook', deliveryId: 'd1', detail: { recipients: [] } },
    ]);
  });

  it('gives one pending head per (alert, channel, recipients) in due order, and the pending rows after a seq', () => {
    store.insertAlert(alert('al_1'));
    store.insertAlert(alert('al_2', { sensorId: 'strain-02' }));
    outbox(store, 'd1', 'al_1', { nextAttemptAt: T0 + 500 });
    outbox(store, 'd2', 'al_1');
    outbox(store, 'd3', 'al_2');
    outbox(store, 'd4', 'al_1', { channelId: 'sms', recipients: ['duty'] });
    expect(store.pendingOutboxHeads().map((r) => r.deliveryId)).toEqual(['d3', 'd4', 'd1']);
    expect(store.pendingOutboxCount()).toBe(4);
    const rows = store.pendingOutboxRows();
    expect(rows.map((r) => [r.deliveryId, r.channelId, r.recipients, r.attempts, r.digestId])).toEqual([
      ['d1', 'ops-hook', [], 0, null],
      ['d2', 'ops-hook', [], 0, null],
      ['d3', 'ops-hook', [], 0, null],
      ['d4', 'sms', ['duty'], 0, null],
    ]);
    expect(rows.map((r) => r.seq)).toEqual([...rows.map((r) => r.seq)].sort((x, y) => x - y));
    expect(store.pendingOutboxRows(rows[1]!.seq).map((r) => r.deliveryId)).toEqual(['d3', 'd4']);

    store.updateOutbox('d1', { status: 'delivered', attempts: 1, nextAttemptAt: T0 + 500, updatedAt: T0 + 600, lastError: null });
    expect(store.getOutbox('d1')).toMatchObject({ status: 'delivered', attempts: 1, updatedAt: T0 + 600, body: '{"delivery_id":"d1"}' });
    expect(store.pendingOutboxHeads().map((r) => r.deliveryId)).toEqual(['d2', 'd3', 'd4']);
    expect(store.outboxForAlert('al_1').map((r) => r.deliveryId)).toEqual(['d1', 'd2', 'd4']);
    expect(store.notifiedTargets('al_1')).toEqual([
      { channel: 'ops-hook', to: [] },
      { channel: 'sms', to: ['duty'] },
    ]);
    expect(store.attemptsSince(T0)).toEqual([{ channelId: 'ops-hook', recipients: [], at: T0 + 600 }]);
  });

  it('takes rows into a digest once and keeps them pending until it settles', () => {
    store.insertAlert(alert('al_1'));
    outbox(store, 'd1', 'al_1');
    outbox(store, 'd2', 'al_1', { channelId: 'sms', recipients: ['duty'] });
    store.insertDigest({ deliveryId: 'g1', channelId: 'ops-hook', rateKey: 'ops-hook', recipients: [], members: ['d1'], nextAttemptAt: T0, createdAt: T0 });
    expect(() => store.insertDigest({ deliveryId: 'g2', channelId: 'ops-hook', rateKey: 'ops-hook', recipients: [], members: ['d1'], nextAttemptAt: T0, createdAt: T0 })).toThrow();
    expect(store.getOutbox('d1')?.digestId).toBe('g1');
    expect(store.pendingOutboxHeads().map((r) => r.deliveryId)).toEqual(['d2']);
    expect(store.pendingDigests().map((d) => [d.deliveryId, d.members, d.status])).toEqual([['g1', ['d1'], 'pending']]);
    store.updateDigest('g1', { status: 'delivered', attempts: 1, nextAttemptAt: T0, updatedAt: T0 + 10, lastError: null });
    expect(store.getDigest('g1')).toMatchObject({ status: 'delivered', attempts: 1, updatedAt: T0 + 10 });
    expect(store.pendingDigests()).toEqual([]);
    expect(store.attemptsSince(T0)).toEqual([{ channelId: 'ops-hook', recipients: [], at: T0 + 10 }]);
  });

  it('refuses a second open alert of a key with a recognisable error', () => {
    store.insertAlert(alert('al_1'));
    let error: unknown;
    try {
      store.transaction(() => store.insertAlert(alert('al_2')));
    } catch (e) {
      error = e;
    }
    expect(isOpenAlertExists(error)).toBe(true);
    expect(store.getAlert('al_2')).toBeUndefined();
    let other: unknown;
    try {
      store.insertAlert(alert('al_1', { sensorId: 'strain-02' }));
    } catch (e) {
      other = e;
    }
    expect(other).toBeDefined();
    expect(isOpenAlertExists(other)).toBe(false);
  });

  it('lets one owner at a time claim a pending outbox row or digest until the claim ends or the attempt is recorded', () => {
    store.insertAlert(alert('al_1'));
    outbox(store, 'd1', 'al_1');
    outbox(store, 'd2', 'al_1', { channelId: 'sms', recipients: ['longcheng-duty'] });
    expect(store.claimOutbox('d1', 'a', T0, T0 + 60_000)).toBe(true);
    expect(store.claimOutbox('d1', 'b', T0 + 1000, T0 + 61_000)).toBe(false);
    expect(store.claimOutbox('d1', 'a', T0 + 1000, T0 + 61_000)).toBe(true);
    // The claim ended: another owner may take the row.
    expect(store.claimOutbox('d1', 'b', T0 + 61_000, T0 + 121_000)).toBe(true);
    expect(store.claimOutbox('d1', 'a', T0 + 62_000, T0 + 122_000)).toBe(false);
    // Recording an attempt ends the claim.
    store.updateOutbox('d1', { status: 'pending', attempts: 1, nextAttemptAt: T0 + 70_000, updatedAt: T0 + 62_000, lastError: 'HTTP 503' });
    expect(store.claimOutbox('d1', 'a', T0 + 70_000, T0 + 130_000)).toBe(true);
    store.updateOutbox('d1', { status: 'delivered', attempts: 2, nextAttemptAt: T0 + 70_000, updatedAt: T0 + 71_000, lastError: null });
    expect(store.claimOutbox('d1', 'a', T0 + 72_000, T0 + 132_000)).toBe(false);
    expect(store.claimOutbox('nope', 'a', T0, T0 + 1000)).toBe(false);

    store.insertDigest({ deliveryId: 'g1', channelId: 'sms', rateKey: 'sms', recipients: ['longcheng-duty'], members: ['d2'], nextAttemptAt: T0, createdAt: T0 });
    expect(store.claimDigest('g1', 'a', T0, T0 + 60_000)).toBe(true);
    expect(store.claimDigest('g1', 'b', T0 + 1, T0 + 60_001)).toBe(false);
    store.updateDigest('g1', { status: 'pending', attempts: 1, nextAttemptAt: T0 + 5000, updatedAt: T0 + 1000, lastError: 'timeout' });
    expect(store.claimDigest('g1', 'b', T0 + 5000, T0 + 65_000)).toBe(true);
    store.updateDigest('g1', { status: 'failed', attempts: 2, nextAttemptAt: T0 + 5000, updatedAt: T0 + 6000, lastError: 'HTTP 400' });
    expect(store.claimDigest('g1', 'b', T0 + 7000, T0 + 67_000)).toBe(false);
  });

  it('keeps silences, flapping marks, used links and settings', () => {
    const silence = {
      id: 'si_1',
      matchers: { asset_id: ['lg-bridge-001'] },
      startsAt: T0,
      endsAt: T0 + 3600_000,
      reason: '检修',
      createdBy: 'duty',
      createdAt: T0,
      deletedAt: null,
      deletedBy: null,
    };
    store.insertSilence(silence);
    store.insertSilence({ ...silence, id: 'si_0', startsAt: T0 - 7200_000, endsAt: T0 - 3600_000 });
    expect(store.getSilence('si_1')).toEqual(silence);
    expect(store.silencesEndingAfter(T0).map((s) => s.id)).toEqual(['si_1']);
    expect(store.expiredSilences(T0).map((s) => s.id)).toEqual(['si_0']);
    expect(store.deleteSilence('si_1', T0 + 1, 'duty')).toBe(true);
    expect(store.deleteSilence('si_1', T0 + 2, 'duty')).toBe(false);
    expect(store.silencesEndingAfter(T0)).toEqual([]);

    const key = { ruleId: 'bridge-strain', assetId: 'lg-bridge-001', sensorId: 'strain-01' };
    store.setFlapping(key, T0);
    store.setFlapping(key, T0 + 5);
    expect(store.flappingKeys()).toEqual([{ ...key, since: T0 }]);
    store.setFlapping(key, null);
    expect(store.flappingKeys()).toEqual([]);

    expect(store.useAckLink('n1', 'al_1', T0, T0 + 1000)).toBe(true);
    expect(store.useAckLink('n1', 'al_1', T0, T0 + 1000)).toBe(false);
    expect(store.ackLinkUsed('n1')).toBe(true);
    store.pruneAckLinks(T0 + 1001);
    expect(store.ackLinkUsed('n1')).toBe(false);

    expect(store.meta('ack_link_key', () => 'first')).toBe('first');
    expect(store.meta('ack_link_key', () => 'second')).toBe('first');
  });

  it('keeps the escalation schedule and says when it is next due', () => {
    store.insertAlert(alert('al_1'));
    store.insertAlert(alert('al_2', { sensorId: 'strain-02' }));
    store.putSchedule({ alertId: 'al_1', policyId: 'bridge-duty', anchorAt: T0, nextTier: 1, nextDueAt: T0 + 600_000, repeats: 0 });
    store.putSchedule({ alertId: 'al_2', policyId: 'bridge-duty', anchorAt: T0, nextTier: 1, nextDueAt: T0 + 300_000, repeats: 0 });
    store.putSchedule({ alertId: 'al_1', policyId: 'bridge-duty', anchorAt: T0, nextTier: 2, nextDueAt: T0 + 900_000, repeats: 1 });
    expect(store.getSchedule('al_1')).toEqual({ alertId: 'al_1', policyId: 'bridge-duty', anchorAt: T0, nextTier: 2, nextDueAt: T0 + 900_000, repeats: 1 });
    expect(store.nextScheduleDue()).toBe(T0 + 300_000);
    expect(store.nextScheduleDueAfter(T0 + 300_000)).toBe(T0 + 900_000);
    expect(store.dueSchedules(T0 + 900_000).map((s) => s.alertId)).toEqual(['al_2', 'al_1']);
    store.deleteSchedule('al_2');
    expect(store.dueSchedules(T0 + 900_000).map((s) => s.alertId)).toEqual(['al_1']);
  });

  it('prunes alerts resolved before a time, oldest first, with their rows; keeps open ones and those with a pending notification', () => {
    for (let i = 1; i <= 4; i++) {
      store.insertAlert(alert(`al_${i}`, { sensorId: `strain-0${i}`, ...resolved(T0 + i) }));
      store.appendTimeline({ alertId: `al_${i}`, at: T0, kind: 'event', type: 'firing', level: 'red', state: 'firing', tier: null, channel: null, deliveryId: null, detail: {} });
      outbox(store, `d${i}`, `al_${i}`);
      if (i !== 3) store.updateOutbox(`d${i}`, { status: 'delivered', attempts: 1, nextAttemptAt: T0, updatedAt: T0, lastError: null });
    }
    store.insertAlert(alert('al_open', { sensorId: 'strain-09', startedAt: T0 - 1000 }));
    store.putSchedule({ alertId: 'al_open', policyId: 'bridge-duty', anchorAt: T0, nextTier: 1, nextDueAt: T0 + 1, repeats: 0 });

    expect(store.pruneResolved(T0 + 10, 1)).toEqual({ alerts: 1, digests: 0 });
    expect(store.getAlert('al_1')).toBeUndefined();
    expect(store.timeline('al_1')).toEqual([]);
    expect(store.outboxForAlert('al_1')).toEqual([]);
    // al_3 has a pending notification; al_4 resolved after the cutoff.
    expect(store.pruneResolved(T0 + 4, 10)).toEqual({ alerts: 1, digests: 0 });
    expect(
      store
        .listAlerts()
        .map((a) => a.id)
        .sort(),
    ).toEqual(['al_3', 'al_4', 'al_open']);
    expect(store.getSchedule('al_open')?.nextTier).toBe(1);
    expect(store.timeline('al_4')).toHaveLength(1);
  });

  it('lists alerts by start in a range, counts open cases by status, and keeps the audit log newest first', () => {
    store.insertAlert(alert('al_1', { startedAt: T0 - 1, ...resolved(T0) }));
    store.insertAlert(alert('al_2', { sensorId: 'strain-02', startedAt: T0 }));
    store.insertAlert(alert('al_3', { sensorId: 'strain-03', startedAt: T0 + 10, acknowledgedAt: T0 + 20, acknowledgedBy: 'ops', state: 'acknowledged' }));
    store.insertAlert(alert('al_4', { sensorId: 'strain-04', startedAt: T0 + 20 }));
    store.insertAlert(alert('al_5', { sensorId: 'strain-05', startedAt: T0 + 30 }));
    expect(store.alertsStartedBetween(T0, T0 + 30).map((a) => a.id)).toEqual(['al_2', 'al_3', 'al_4']);
    const kase = { department: null, workOrderId: null, dismissReason: null, updatedAt: T0, ackDeadline: null };
    store.putCase({ alertId: 'al_4', status: 'dispatched', ...kase, department: 'lg-bridge' });
    store.putCase({ alertId: 'al_5', status: 'dismissed', ...kase, dismissReason: 'sensor_fault' });
    // al_1 resolved without a case is still a new case; al_3 acknowledged without one is acknowledged.
    expect(Object.fromEntries(store.openCaseCounts())).toEqual({ new: 2, acknowledged: 1, dispatched: 1 });
    // Several cases in one read: those without a case (al_2) and unknown ids are absent.
    const cases = store.getCases(['al_5', 'al_2', 'al_4', 'nope', "al'; --"]);
    expect([...cases.keys()].sort()).toEqual(['al_4', 'al_5']);
    expect(cases.get('al_4')).toEqual({ alertId: 'al_4', status: 'dispatched', ...kase, department: 'lg-bridge' });
    expect(cases.get('al_5')).toEqual(store.getCase('al_5'));
    expect(store.getCases([]).size).toBe(0);

    const first = store.appendAudit({ at: T0, actor: 'ops', method: 'POST', path: '/api/v1/alerts/al_2/ack', outcome: 200 });
    const second = store.appendAudit({ at: T0 + 1, actor: null, method: 'DELETE', path: '/api/v1/silences/x', outcome: 401 });
    expect(second).toBeGreaterThan(first);
    expect(store.auditEntries()).toEqual([
      { seq: second, at: T0 + 1, actor: null, method: 'DELETE', path: '/api/v1/silences/x', outcome: 401 },
      { seq: first, at: T0, actor: 'ops', method: 'POST', path: '/api/v1/alerts/al_2/ack', outcome: 200 },
    ]);
    expect(store.auditEntries({ since: T0 + 1 }).map((e) => e.seq)).toEqual([second]);
    expect(store.auditEntries({ beforeSeq: second }).map((e) => e.seq)).toEqual([first]);
    expect(store.auditEntries({ limit: 1 }).map((e) => e.seq)).toEqual([second]);
    expect(store.pruneAudit(T0 + 1, 10)).toBe(1);
    expect(store.auditEntries().map((e) => e.seq)).toEqual([second]);
  });

  it('reopens with the same data', () => {
    store.insertAlert(alert('al_1'));
    const key = store.meta('ack_link_key', () => 'k');
    store.close();
    expect(store.isOpen).toBe(false);
    store = open(dir);
    expect(store.getAlert('al_1')?.id).toBe('al_1');
    expect(store.meta('ack_link_key', () => 'other')).toBe(key);
  });
});
