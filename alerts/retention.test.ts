/**
 * Retention of alerts.db on a fake clock: alerts resolved longer ago than the retention go, with
 * their timeline and outbox rows, in bounded batches; open and recently resolved alerts stay.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ruleEvent, startHarness, type Harness } from '../test/support/alerts.js';
import { storageSchema } from '../ingest/config.js';
import type { AlertStore } from './store.js';
import type { EscalationConfig } from './config.js';
import { ALERTS_PRUNED_METRIC } from './retention.js';

const T0 = Date.UTC(2025, 10, 28, 2, 0, 0);
const DAY = 86_400_000;
const HOUR = 3_600_000;

const ONCE: EscalationConfig = { id: 'bridge-duty', tiers: [{ after: 0, notify: [{ channel: 'ops-hook', to: [] }] }] };

function rowCounts(store: AlertStore, ids: string[]) {
  return ids.map((id) => [store.getAlert(id)?.state ?? 'gone', store.timeline(id).length, store.outboxForAlert(id).length]);
}

describe('storage.retention.alerts', () => {
  it('defaults to 400 days and takes a duration; 0s keeps alerts forever', () => {
    expect(storageSchema.parse({}).retention.alerts).toBe(400 * DAY);
    expect(storageSchema.parse({ retention: { alerts: '30d' } }).retention).toEqual({ telemetry: 400 * DAY, alerts: 30 * DAY });
    expect(storageSchema.parse({ retention: { alerts: '0s' } }).retention.alerts).toBe(0);
    expect(storageSchema.safeParse({ retention: { alerts: 'a year' } }).success).toBe(false);
  });
});

describe('alerts.db retention', () => {
  let h: Harness;
  let batches: number[];

  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
    batches = [];
  });

  afterEach(async () => {
    await h.close();
    vi.useRealTimers();
  });

  function start(batchSize: number) {
    h = startHarness({
      escalations: [ONCE],
      service: { retention: { maxAgeMs: 400 * DAY, intervalMs: HOUR, batchSize } },
      wrapStore: (store) =>
        new Proxy(store, {
          get(target, prop, receiver) {
            const value = Reflect.get(target, prop, receiver) as unknown;
            if (prop !== 'pruneResolved') return value;
            return (before: number, limit: number) => {
              const done = target.pruneResolved(before, limit);
              batches.push(done.alerts);
              return done;
            };
          },
        }),
    });
  }

  /** Opens and resolves an alert on a sensor now; returns its id. */
  async function resolvedAlert(sensorId: string): Promise<string> {
    void h.service.handle([ruleEvent('red', 312.5, { sensorId })]);
    void h.service.handle([ruleEvent(null, 280, { sensorId })]);
    await vi.advanceTimersByTimeAsync(0);
    return h.store.listAlerts({ limit: 1000 }).find((a) => a.sensorId === sensorId)!.id;
  }

  it('deletes alerts resolved more than the retention ago with their timeline and outbox rows, and keeps the rest', async () => {
    start(200);
    const old = await resolvedAlert('strain-01');
    void h.service.handle([ruleEvent('red', 312.5, { sensorId: 'strain-02' })]);
    await vi.advanceTimersByTimeAsync(0);
    const open = h.store.listAlerts().find((a) => a.sensorId === 'strain-02')!.id;
    vi.setSystemTime(T0 + 10 * DAY);
    const recent = await resolvedAlert('strain-03');
    expect(rowCounts(h.store, [old, open, recent])).toEqual([
      ['resolved', 6, 2],
      ['firing', 3, 1],
      ['resolved', 6, 2],
    ]);

    // The job runs every hour on the clock (next at 400 d - 30 min, then 400 d + 30 min after T0):
    // the first resolved alert goes 400 days after it resolved, not before.
    vi.setSystemTime(T0 + 400 * DAY - 90 * 60_000);
    await vi.advanceTimersByTimeAsync(HOUR);
    expect(rowCounts(h.store, [old, open, recent])).toEqual([
      ['resolved', 6, 2],
      ['firing', 3, 1],
      ['resolved', 6, 2],
    ]);
    await vi.advanceTimersByTimeAsync(HOUR);
    expect(rowCounts(h.store, [old, open, recent])).toEqual([
      ['gone', 0, 0],
      ['firing', 3, 1],
      ['resolved', 6, 2],
    ]);
    expect(h.metrics.counter(ALERTS_PRUNED_METRIC, '').get()).toBe(1);
    // The open alert's notifications are untouched: resolving it still notifies who was notified.
    void h.service.handle([ruleEvent(null, 280, { sensorId: 'strain-02' })]);
    await vi.advanceTimersByTimeAsync(0);
    expect(h.take().slice(-1)).toEqual([['resolved', 0, 'ops-hook', []]]);
  });

  it('deletes in bounded batches, yielding between them', async () => {
    start(2);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await resolvedAlert(`strain-0${i}`));
    batches.length = 0;
    vi.setSystemTime(T0 + 401 * DAY);
    // One batch per turn of the event loop.
    await vi.advanceTimersByTimeAsync(HOUR);
    expect(batches).toEqual([2]);
    await vi.advanceTimersByTimeAsync(10);
    expect(batches).toEqual([2, 2, 1]);
    expect(ids.map((id) => h.store.getAlert(id))).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(h.store.listAlerts()).toEqual([]);
  });
});
