/**
 * The queue of work waiting for alerts.db, on fake timers: order kept, backoff, bounded, and
 * callbacks that throw never stop the retries nor reach the caller.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TransitionQueue } from './transition-queue.js';

describe('transition queue', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(0);
  });

  afterEach(() => vi.useRealTimers());

  function queue(failing: { on: boolean }, callbacks: { onFailing?: () => void; onRecovered?: () => void } = {}) {
    const stored: number[] = [];
    const tries: number[] = [];
    const q = new TransitionQueue<number>({
      clock: { now: () => Date.now() },
      apply: (n) => {
        tries.push(Date.now());
        if (failing.on) throw new Error('disk I/O error');
        stored.push(n);
      },
      onFailing: callbacks.onFailing ?? (() => undefined),
      onRecovered: callbacks.onRecovered ?? (() => undefined),
      maxItems: 3,
      baseDelayMs: 100,
      maxDelayMs: 400,
    });
    return { q, stored, tries };
  }

  it('stores in order, keeps later items behind a failure, backs off, and refuses once full', async () => {
    const failing = { on: false };
    const { q, stored, tries } = queue(failing);
    q.push([1]);
    failing.on = true;
    q.push([2, 3]);
    q.push([4]);
    expect(stored).toEqual([1]);
    expect(q.size).toBe(3);
    expect(q.accepting()).toBe(false);
    expect(q.since).toBe(0);
    await vi.advanceTimersByTimeAsync(1500);
    // 0, then 100, 200, 400, 400, 400 ms later.
    expect(tries.slice(1)).toEqual([0, 100, 300, 700, 1100, 1500]);
    failing.on = false;
    await vi.advanceTimersByTimeAsync(400);
    expect(stored).toEqual([1, 2, 3, 4]);
    expect(q.size).toBe(0);
    expect(q.accepting()).toBe(true);
    expect(q.since).toBeUndefined();
  });

  it('keeps retrying when a callback throws, and push never throws', async () => {
    const failing = { on: true };
    let recovered = 0;
    const { q, stored } = queue(failing, {
      onFailing: () => {
        throw new Error('publishing the platform alert failed');
      },
      onRecovered: () => {
        recovered++;
        throw new Error('and so did this');
      },
    });
    expect(() => q.push([1, 2])).not.toThrow();
    failing.on = false;
    await vi.advanceTimersByTimeAsync(100);
    expect(stored).toEqual([1, 2]);
    expect(recovered).toBe(1);
    expect(q.since).toBeUndefined();
  });
});
