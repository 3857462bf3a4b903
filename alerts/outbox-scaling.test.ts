/**
 * The outbox pump's cost during a channel outage: with N notifications pending and every
 * attempt failing, the rows it reads from the store grow with N, not with N per delivery.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MIN, ruleEvent, startHarness, type Harness } from '../test/support/alerts.js';
import type { AlertStore } from './store.js';
import type { EscalationConfig } from './config.js';

const T0 = Date.UTC(2025, 10, 28, 2, 0, 0);

/** A store that counts calls and the rows its list methods return. */
function counting(store: AlertStore, reads: { calls: number; rows: number }): AlertStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function' || prop === 'transaction') return value;
      return (...args: unknown[]) => {
        reads.calls++;
        const result = (value as (...a: unknown[]) => unknown).apply(target, args);
        if (Array.isArray(result)) reads.rows += result.length;
        return result;
      };
    },
  });
}

describe('outbox during a channel outage', () => {
  let h: Harness;

  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });

  afterEach(async () => {
    await h.close();
    vi.useRealTimers();
  });

  it('reads each pending row once, not once per delivery attempt', async () => {
    const N = 300;
    const ROUNDS = 3;
    const reads = { calls: 0, rows: 0 };
    const policy: EscalationConfig = { id: 'bridge-duty', tiers: [{ after: 0, notify: [{ channel: 'ops-hook', to: [] }] }] };
    h = startHarness({
      escalations: [policy],
      channels: [{ id: 'ops-hook', maxAgeMs: 60 * MIN }],
      retry: { baseDelayMs: 1000, maxDelayMs: 1000, jitter: 0 },
      wrapStore: (s) => counting(s, reads),
    });
    const hook = h.channels.get('ops-hook')!;
    for (let i = 0; i < N * ROUNDS; i++) hook.answers.push({ outcome: 'retry', error: 'HTTP 503', statusCode: 503 });

    void h.service.handle(Array.from({ length: N }, (_, i) => ruleEvent('red', 310, { sensorId: `strain-${i}` })));
    const before = { ...reads };
    await vi.advanceTimersByTimeAsync(0);
    for (let round = 1; round < ROUNDS; round++) await vi.advanceTimersByTimeAsync(1000);

    expect(h.sent).toHaveLength(N * ROUNDS);
    expect(new Set(h.sent.map((n) => n.deliveryId)).size).toBe(N);
    expect(h.sent.map((n) => n.attempt).sort()).toEqual([...Array<number>(N).fill(1), ...Array<number>(N).fill(2), ...Array<number>(N).fill(3)]);
    // Once at the first pump: every row read once into the index; each attempt then reads its own row.
    expect(reads.rows - before.rows).toBe(N);
    // Per attempt: the row, its outcome (two writes), a handful of index reads; never a scan.
    expect(reads.calls - before.calls).toBeLessThanOrEqual(N * ROUNDS * 6 + 50);
    expect(h.store.pendingOutboxCount()).toBe(N);
  });
});
