import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import type { StorageStatus } from './storage.js';
import { evaluateWatchdog, IngestWatchdog, type WatchdogConfig, type WatchdogSignal, type WatchdogState } from './watchdog.js';

const config: WatchdogConfig = { spoolAlertPercent: 80, noReadings: 600_000, failingWrites: 300_000 };

function storage(over: Partial<StorageStatus> & { usage?: number } = {}): StorageStatus {
  const { usage = 0, ...rest } = over;
  return { state: 'ok', pending: 0, accepting: true, spool: { bytes: usage, capacityBytes: 100, usagePercent: usage, oldestAgeSeconds: 0 }, ...rest };
}

/** Runs the pure evaluation over a sequence of (now, inputs) and collects the signals. */
function run(steps: Array<{ now: number; lastReadingAt?: number; storage?: StorageStatus }>): Array<[number, WatchdogSignal]> {
  let state: WatchdogState = {};
  const out: Array<[number, WatchdogSignal]> = [];
  for (const step of steps) {
    const r = evaluateWatchdog(state, { lastReadingAt: step.lastReadingAt ?? 0, storage: step.storage ?? storage() }, config, step.now);
    state = r.state;
    for (const s of r.signals) out.push([step.now, s]);
  }
  return out;
}

describe('evaluateWatchdog', () => {
  it('reports every check once at first, then only changes', () => {
    expect(run([{ now: 1000 }, { now: 2000 }])).toEqual([
      [1000, { check: 'spool', level: null, value: 0, threshold: 80 }],
      [1000, { check: 'ingest', level: null, value: 1, threshold: 600 }],
      [1000, { check: 'storage', level: null, value: 0, threshold: 300 }],
    ]);
  });

  it('raises the spool alarm at 80 %, red while readings are refused, and clears 10 points below', () => {
    const signals = run([
      { now: 0, storage: storage({ usage: 79.9 }) },
      { now: 1, storage: storage({ usage: 80 }) },
      { now: 2, storage: storage({ usage: 100, accepting: false }) },
      { now: 3, storage: storage({ usage: 75 }) },
      { now: 4, storage: storage({ usage: 70.5 }) },
      { now: 5, storage: storage({ usage: 70 }) },
    ]).filter(([, s]) => s.check === 'spool');
    expect(signals).toEqual([
      [0, { check: 'spool', level: null, value: 79.9, threshold: 80 }],
      [1, { check: 'spool', level: 'orange', value: 80, threshold: 80 }],
      [2, { check: 'spool', level: 'red', value: 100, threshold: 80 }],
      [3, { check: 'spool', level: 'orange', value: 75, threshold: 80 }],
      [5, { check: 'spool', level: null, value: 70, threshold: 80 }],
    ]);
  });

  it('fires the ingest deadman after no_readings without a reading, and clears when readings come', () => {
    const signals = run([
      { now: 599_999, lastReadingAt: 0 },
      { now: 600_000, lastReadingAt: 0 },
      { now: 900_000, lastReadingAt: 0 },
      { now: 900_001, lastReadingAt: 900_000 },
    ]).filter(([, s]) => s.check === 'ingest');
    expect(signals).toEqual([
      [599_999, { check: 'ingest', level: null, value: 599, threshold: 600 }],
      [600_000, { check: 'ingest', level: 'orange', value: 600, threshold: 600 }],
      [900_001, { check: 'ingest', level: null, value: 0, threshold: 600 }],
    ]);
  });

  it('fires the storage deadman after failing_writes of failures, and clears on success', () => {
    const failing = storage({ state: 'degraded', reason: 'unreachable', failingSince: 10_000 });
    const signals = run([
      { now: 10_000, storage: failing },
      { now: 309_999, storage: failing },
      { now: 310_000, storage: failing },
      // Writes succeed again, the backlog drains: the alert holds until storage is ok.
      { now: 320_000, storage: storage({ state: 'degraded', reason: 'draining' }) },
      { now: 330_000, storage: storage() },
    ]).filter(([, s]) => s.check === 'storage');
    expect(signals).toEqual([
      [10_000, { check: 'storage', level: null, value: 0, threshold: 300 }],
      [310_000, { check: 'storage', level: 'orange', value: 300, threshold: 300 }],
      [330_000, { check: 'storage', level: null, value: 0, threshold: 300 }],
    ]);
  });

  for (const reason of ['unauthorized', 'forbidden', 'database_not_found', 'bucket_not_found'] as const) {
    it(`fires the storage alert at once when writes fail as ${reason} (waiting does not fix it), and clears on success`, () => {
      const failing = storage({ state: 'degraded', reason, failingSince: 10_000 });
      const signals = run([
        { now: 9_000, storage: storage() },
        { now: 10_000, storage: failing },
        { now: 310_000, storage: failing },
        { now: 320_000, storage: storage({ state: 'degraded', reason: 'draining' }) },
        { now: 330_000, storage: storage() },
      ]).filter(([, s]) => s.check === 'storage');
      expect(signals).toEqual([
        [9_000, { check: 'storage', level: null, value: 0, threshold: 300 }],
        [10_000, { check: 'storage', level: 'orange', value: 0, threshold: 0 }],
        [330_000, { check: 'storage', level: null, value: 0, threshold: 300 }],
      ]);
    });
  }

  it('fires at once for a failure that needs an operator even with failing_writes off', () => {
    const off = { ...config, failingWrites: 0 };
    const r = evaluateWatchdog({ storage: null }, { lastReadingAt: 0, storage: storage({ state: 'degraded', reason: 'unauthorized', failingSince: 0 }) }, off, 1000);
    expect(r.signals.filter((s) => s.check === 'storage')).toEqual([{ check: 'storage', level: 'orange', value: 1, threshold: 0 }]);
  });

  it('keeps an alert carried over from a previous run until there is evidence it cleared', () => {
    const seeded: WatchdogState = { ingest: 'orange', storage: 'orange' };
    const draining = storage({ state: 'degraded', reason: 'draining' });
    // A new process: no failure seen yet, no reading yet; neither alert is resolved.
    let r = evaluateWatchdog(seeded, { lastReadingAt: 0, readingSeen: false, storage: draining }, config, 1000);
    expect(r.signals).toEqual([{ check: 'spool', level: null, value: 0, threshold: 80 }]);
    // A reading arrives and storage is ok again: both clear.
    r = evaluateWatchdog(r.state, { lastReadingAt: 2000, readingSeen: true, storage: storage() }, config, 2000);
    expect(r.signals).toEqual([
      { check: 'ingest', level: null, value: 0, threshold: 600 },
      { check: 'storage', level: null, value: 0, threshold: 300 },
    ]);
  });

  it('does nothing for a check set to 0', () => {
    const off = { ...config, noReadings: 0, failingWrites: 0 };
    const r = evaluateWatchdog({ ingest: null, storage: null }, { lastReadingAt: 0, storage: storage({ failingSince: 0 }) }, off, 10 ** 9);
    expect(r.signals.filter((s) => s.check !== 'spool')).toEqual([]);
  });
});

describe('IngestWatchdog', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  it('checks on its interval, counts silence from start and from the last reading', async () => {
    const signals: Array<[number, string, string | null]> = [];
    const dog = new IngestWatchdog({
      config: { ...config, noReadings: 60_000 },
      clock: { now: () => Date.now() },
      logger: silentLogger(),
      storage: () => storage(),
      onSignal: (s) => signals.push([Date.now(), s.check, s.level]),
      interval: 5000,
    });
    dog.start();
    await vi.advanceTimersByTimeAsync(30_000);
    dog.readingsAccepted();
    await vi.advanceTimersByTimeAsync(60_000);
    dog.readingsAccepted();
    await vi.advanceTimersByTimeAsync(5000);
    dog.stop();
    await vi.advanceTimersByTimeAsync(600_000);
    expect(signals.filter(([, check]) => check === 'ingest')).toEqual([
      [0, 'ingest', null],
      [90_000, 'ingest', 'orange'],
      [95_000, 'ingest', null],
    ]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
