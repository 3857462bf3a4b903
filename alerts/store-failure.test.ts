/**
 * alerts.db failing under the alert stage (disk full, I/O error, busy): the rule events wait in
 * memory, in order, and are retried until stored; nothing is lost, reordered or sent twice; the
 * platform alert `platform-alerts-db` is published at once and recorded when the store recovers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BRIDGE_DUTY, MIN, ruleEvent, startHarness, type Harness } from '../test/support/alerts.js';
import type { AlertStore } from './store.js';
import type { EscalationConfig } from './config.js';
import type { AlertEventBody } from './event-body.js';

const T0 = Date.UTC(2025, 10, 28, 2, 0, 0);
const S = 1000;
const iso = (ms: number) => new Date(ms).toISOString();

const FALLBACK: EscalationConfig = { id: 'fallback', tiers: [{ after: 0, notify: [{ channel: 'platform-hook', to: [] }] }] };

interface Fault {
  on: boolean;
  /** Only these methods fail (all when unset). */
  only?: string;
  calls: number;
}

/** A store whose calls fail while `fault.on`, as a full disk would. */
function faulty(store: AlertStore, fault: Fault): AlertStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function' || prop === 'close') return value;
      return (...args: unknown[]) => {
        if (fault.on && (fault.only === undefined || fault.only === prop)) {
          fault.calls++;
          throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

describe('alert transitions while alerts.db fails', () => {
  let h: Harness;
  const fault: Fault = { on: false, calls: 0 };

  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
    fault.on = false;
    delete fault.only;
    fault.calls = 0;
    h = startHarness({
      escalations: [BRIDGE_DUTY, FALLBACK],
      channels: [{ id: 'ops-hook' }, { id: 'sms', type: 'sms', addressing: 'person' }, { id: 'platform-hook' }],
      wrapStore: (s) => faulty(s, fault),
      service: { storeRetry: { baseDelayMs: S, maxDelayMs: 4 * S }, maxQueuedTransitions: 3 },
    });
  });

  afterEach(async () => {
    fault.on = false;
    await h.close();
    vi.useRealTimers();
  });

  const published = () => h.published.splice(0).map(([topic, payload]) => [topic, (JSON.parse(payload) as AlertEventBody).event, (JSON.parse(payload) as AlertEventBody).alert.rule_id]);

  it('resolves handle() once its events are stored, after alerts.db recovers, and rejects it when the stage stops first', async () => {
    await vi.advanceTimersByTimeAsync(0);
    let stored = false;
    await h.service.handle([ruleEvent('red', 312.5)]);
    expect(h.store.listAlerts()).toHaveLength(1);
    fault.on = true;
    const waiting = h.service.handle([ruleEvent('red', 320, { sensorId: 'strain-02' }), ruleEvent('red', 330, { sensorId: 'strain-03' })]);
    void waiting.then(() => (stored = true));
    await vi.advanceTimersByTimeAsync(3 * S);
    expect(stored).toBe(false);
    fault.on = false;
    await vi.advanceTimersByTimeAsync(4 * S);
    expect(stored).toBe(true);
    expect(h.store.listAlerts().filter((a) => a.ruleId === 'bridge-strain')).toHaveLength(3);

    fault.on = true;
    const lost = h.service.handle([ruleEvent('red', 340, { sensorId: 'strain-04' })]);
    await h.service.stop();
    await expect(lost).rejects.toThrow('the alert stage stopped before it stored these rule events');
    fault.on = false;
    h.service.start();
  });

  it('opens the alert once alerts.db works again, with its timeline from when the event came, and notifies it once', async () => {
    // The start's own work (outbox, retention) is done before the disk fills.
    await vi.advanceTimersByTimeAsync(0);
    fault.on = true;
    void h.service.handle([ruleEvent('red', 312.5)]);
    expect(h.store.listAlerts()).toEqual([]);
    expect(h.service.storeHealth()).toEqual({ waiting: 1, failing_since: iso(T0), error: 'database or disk is full' });
    // The platform alert is published at once; the rule's alert waits.
    expect(published()).toEqual([['alerts/red/watchpost', 'firing', 'platform-alerts-db']]);

    // Retries back off: 1 s, 2 s, 4 s, 4 s; none stores anything.
    const callsAfterFirst = fault.calls;
    await vi.advanceTimersByTimeAsync(7 * S);
    expect(fault.calls - callsAfterFirst).toBe(3);
    expect(h.store.listAlerts()).toEqual([]);
    expect(h.take()).toEqual([]);

    fault.on = false;
    await vi.advanceTimersByTimeAsync(4 * S);
    const recovered = T0 + 11 * S;
    expect(h.service.storeHealth()).toBeUndefined();
    const [outage, alert] = [h.store.listAlerts({ assetId: 'watchpost' })[0]!, h.store.listAlerts({ assetId: 'lg-bridge-001' })[0]!];
    expect(alert).toMatchObject({ ruleId: 'bridge-strain', level: 'red', state: 'firing', startedAt: T0, value: 312.5 });
    expect(h.service.get(alert.id).timeline.map((e) => [e.type, e.at])).toEqual([
      ['firing', iso(T0)],
      ['queued', iso(T0)],
      ['delivered', iso(recovered)],
    ]);
    expect(outage).toMatchObject({ ruleId: 'platform-alerts-db', state: 'resolved', startedAt: T0, resolvedAt: recovered, resolveReason: 'store_recovered', value: 1 });
    expect(
      h.service
        .get(outage.id)
        .timeline.filter((e) => e.kind === 'event')
        .map((e) => [e.type, e.at]),
    ).toEqual([
      ['firing', iso(T0)],
      ['resolved', iso(recovered)],
    ]);
    expect(h.take()).toEqual([
      ['firing', 0, 'ops-hook', []],
      ['firing', 0, 'platform-hook', []],
      ['resolved', 0, 'platform-hook', []],
    ]);
    // Published: the rule's alert opening (when stored) and the outage's end; its firing was published already.
    expect(published()).toEqual([
      ['alerts/red/lg-bridge-001', 'firing', 'bridge-strain'],
      ['alerts/red/watchpost', 'resolved', 'platform-alerts-db'],
    ]);

    // Exactly once: nothing more until tier 1, which counts from when the event came.
    await vi.advanceTimersByTimeAsync(10 * MIN - 11 * S - 1);
    expect(h.take()).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.take()).toEqual([
      ['escalated', 1, 'ops-hook', []],
      ['escalated', 1, 'sms', ['street-supervisor']],
    ]);
  });

  it('keeps later events behind the one that failed, in order, and refuses readings once the queue is full', async () => {
    fault.on = true;
    void h.service.handle([ruleEvent('red', 312.5)]);
    void h.service.handle([ruleEvent(null, 280), ruleEvent('yellow', 301, { sensorId: 'strain-02' })]);
    expect(h.service.accepting()).toBe(false);
    expect(h.service.storeHealth()?.waiting).toBe(3);

    fault.on = false;
    await vi.advanceTimersByTimeAsync(S);
    expect(h.service.accepting()).toBe(true);
    const bridge = h.store.listAlerts({ assetId: 'lg-bridge-001' });
    const first = bridge.find((a) => a.sensorId === 'strain-01')!;
    const second = bridge.find((a) => a.sensorId === 'strain-02')!;
    expect(first).toMatchObject({ state: 'resolved', level: 'red', startedAt: T0, resolvedAt: T0, resolveReason: 'condition_cleared' });
    expect(second).toMatchObject({ state: 'firing', level: 'yellow', startedAt: T0 });
    expect(
      h.service
        .get(first.id)
        .timeline.filter((e) => e.kind === 'event')
        .map((e) => e.type),
    ).toEqual(['firing', 'resolved']);
    const sent = h.sent.splice(0).map((n) => [n.alertId, n.event, n.channelId]);
    expect(sent.filter(([id]) => id === first.id)).toEqual([
      [first.id, 'firing', 'ops-hook'],
      [first.id, 'resolved', 'ops-hook'],
    ]);
    expect(sent.filter(([id]) => id === second.id)).toEqual([[second.id, 'firing', 'ops-hook']]);
    expect(sent.filter(([, , channel]) => channel === 'platform-hook').map(([, event]) => event)).toEqual(['firing', 'resolved']);
    expect(sent).toHaveLength(5);
  });

  it('keeps a delivery_failed alert that cannot be stored until it can', async () => {
    h.channels.get('ops-hook')!.answers.push({ outcome: 'failed', error: 'HTTP 400', statusCode: 400 });
    void h.service.handle([ruleEvent('red', 312.5)]);
    const alert = h.store.listAlerts()[0]!;
    fault.on = true;
    fault.only = 'insertAlert';
    await vi.advanceTimersByTimeAsync(0);
    expect(h.service.storeHealth()).toEqual({ waiting: 1, failing_since: iso(T0), error: 'database or disk is full' });
    expect(h.store.listAlerts().map((a) => a.ruleId)).toEqual(['bridge-strain']);

    fault.on = false;
    await vi.advanceTimersByTimeAsync(S);
    const failed = h.store.listAlerts({ assetId: 'lg-bridge-001' }).find((a) => a.ruleId === 'delivery_failed');
    expect(failed).toMatchObject({ sensorId: 'ops-hook', state: 'firing', startedAt: T0 });
    expect(
      h.service
        .get(failed!.id)
        .timeline.filter((e) => e.kind === 'event')
        .map((e) => e.type),
    ).toEqual(['firing', 'delivery_failed']);
    expect(
      h.service
        .get(alert.id)
        .timeline.filter((e) => e.kind === 'delivery')
        .map((e) => e.type),
    ).toEqual(['queued', 'delivery_failed']);
    expect(h.take()).toEqual([
      ['firing', 0, 'ops-hook', []],
      ['firing', 0, 'platform-hook', []],
      ['firing', 0, 'platform-hook', []],
      ['resolved', 0, 'platform-hook', []],
    ]);
  });
});
