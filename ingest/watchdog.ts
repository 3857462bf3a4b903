/**
 * The platform's own deadman and spool alarm. Three checks on the data path, each a level that
 * the composition root turns into a platform alert (to the `fallback` escalation):
 *
 * - `spool`: the spool is `alertPercent` full (orange), or storage refuses readings, so devices
 *   are not acknowledged (red). Clears once usage is 10 points below the threshold and
 *   readings are accepted again.
 * - `ingest`: no reading accepted from any device for `noReadings` ms (orange): the district
 *   is unwatched. Clears when readings arrive.
 * - `storage`: writes to the backend have failed without a success for `failingWrites` ms
 *   (orange), or at once when they fail for a reason that waiting does not fix (credentials
 *   rejected, no write privilege, database or bucket missing: someone has to act, and the
 *   spool is filling meanwhile); an outage of the server itself gets the `failingWrites` grace,
 *   so a restart of InfluxDB does not page anyone. Clears on the first successful write.
 *
 * `evaluateWatchdog` is pure (state, inputs, now) -> (state, signals); `IngestWatchdog` owns the
 * timer. A signal is emitted only when a check's level changes, and on the first evaluation for
 * every check (so a clear condition resolves an alert left open by a previous run). A check
 * seeded as active (an alert still open from before a restart) clears only on evidence: a
 * reading accepted, or storage reporting ok; not merely because the new process has not failed
 * yet, so a restart does not resolve and re-raise the same alert.
 */
import type { Clock } from '../lib/clock.js';
import type { Level } from '../lib/levels.js';
import type { Logger } from '../lib/logger.js';
import type { StorageStatus } from './storage.js';
import { OPERATOR_REASONS, type StorageFailureReason } from './storage-errors.js';

export const WATCHDOG_CHECKS = ['spool', 'ingest', 'storage'] as const;
export type WatchdogCheck = (typeof WATCHDOG_CHECKS)[number];

export interface WatchdogConfig {
  /** Spool usage (percent) that raises the spool alarm. */
  spoolAlertPercent: number;
  /** ms without any reading before the ingest deadman fires; 0 = off. */
  noReadings: number;
  /** ms of failing storage writes before the storage deadman fires; 0 = off (failures that need an operator still fire). */
  failingWrites: number;
}

export interface WatchdogInputs {
  /** When the last reading was accepted (or the watchdog started). */
  lastReadingAt: number;
  /** A reading has been accepted since the watchdog started. */
  readingSeen?: boolean;
  storage: StorageStatus | undefined;
}

export interface WatchdogSignal {
  check: WatchdogCheck;
  level: Level | null;
  /** spool: usage percent; ingest and storage: seconds. */
  value: number;
  /** The threshold in the same unit. */
  threshold: number;
}

/** The level each check last reported; absent = never reported. */
export type WatchdogState = Partial<Record<WatchdogCheck, Level | null>>;

/** Points of spool usage below the threshold before the spool alarm clears. */
export const SPOOL_HYSTERESIS_PERCENT = 10;

function spoolLevel(previous: Level | null | undefined, storage: StorageStatus | undefined, config: WatchdogConfig): { level: Level | null; value: number } {
  const usage = storage?.spool?.usagePercent ?? 0;
  if (storage && storage.accepting === false) return { level: 'red', value: usage };
  if (usage >= config.spoolAlertPercent) return { level: 'orange', value: usage };
  if (previous && usage > config.spoolAlertPercent - SPOOL_HYSTERESIS_PERCENT) return { level: 'orange', value: usage };
  return { level: null, value: usage };
}

export function evaluateWatchdog(state: WatchdogState, inputs: WatchdogInputs, config: WatchdogConfig, now: number): { state: WatchdogState; signals: WatchdogSignal[] } {
  const next: WatchdogState = { ...state };
  const signals: WatchdogSignal[] = [];
  const report = (check: WatchdogCheck, level: Level | null, value: number, threshold: number) => {
    if (state[check] === level) return;
    next[check] = level;
    signals.push({ check, level, value, threshold });
  };

  const spool = spoolLevel(state.spool, inputs.storage, config);
  report('spool', spool.level, spool.value, config.spoolAlertPercent);

  const silentMs = Math.max(0, now - inputs.lastReadingAt);
  const silent = config.noReadings > 0 && silentMs >= config.noReadings;
  const ingestHeld = !silent && config.noReadings > 0 && state.ingest && inputs.readingSeen === false;
  report('ingest', silent ? 'orange' : ingestHeld ? state.ingest! : null, Math.floor(silentMs / 1000), config.noReadings / 1000);

  const failingSince = inputs.storage?.failingSince;
  const failingMs = failingSince === undefined ? 0 : Math.max(0, now - failingSince);
  const reason = inputs.storage?.state === 'degraded' ? inputs.storage.reason : undefined;
  const needsOperator = failingSince !== undefined && reason !== undefined && OPERATOR_REASONS.has(reason as StorageFailureReason);
  const overdue = config.failingWrites > 0 && failingSince !== undefined && failingMs >= config.failingWrites;
  const failing = overdue || needsOperator;
  const storageHeld = !failing && state.storage && inputs.storage?.state !== 'ok';
  // An alert raised at once reports 0 as its threshold: it did not wait for failingWrites.
  const threshold = needsOperator && !overdue ? 0 : config.failingWrites / 1000;
  report('storage', failing ? 'orange' : storageHeld ? state.storage! : null, Math.floor(failingMs / 1000), threshold);

  return { state: next, signals };
}

export interface IngestWatchdogDeps {
  config: WatchdogConfig;
  clock: Clock;
  logger: Logger;
  storage: () => StorageStatus | undefined;
  onSignal: (signal: WatchdogSignal) => void;
  /** How often the checks run (ms). */
  interval?: number;
}

export const DEFAULT_WATCHDOG_INTERVAL_MS = 5000;

export class IngestWatchdog {
  private state: WatchdogState = {};
  private lastReadingAt = 0;
  private readingSeen = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly log: Logger;

  constructor(private readonly deps: IngestWatchdogDeps) {
    this.log = deps.logger.child({ module: 'watchdog' });
  }

  /**
   * The ingest deadman counts from here until the first reading. `open`: checks whose alert is
   * still open from a previous run, with its level.
   */
  start(open: WatchdogState = {}): void {
    if (this.timer) return;
    this.lastReadingAt = this.deps.clock.now();
    this.readingSeen = false;
    this.state = { ...open };
    this.check();
    this.timer = setInterval(() => this.check(), this.deps.interval ?? DEFAULT_WATCHDOG_INTERVAL_MS);
    this.timer.unref?.();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Readings were accepted (hot path: one clock read). */
  readingsAccepted(): void {
    this.lastReadingAt = this.deps.clock.now();
    this.readingSeen = true;
  }

  /** Runs the checks now. */
  check(): void {
    // Checks never reported yet are reported now; seeded ones only when their level changes.
    const { state, signals } = evaluateWatchdog(
      this.state,
      { lastReadingAt: this.lastReadingAt, readingSeen: this.readingSeen, storage: this.deps.storage() },
      this.deps.config,
      this.deps.clock.now(),
    );
    this.state = state;
    for (const signal of signals) {
      if (signal.level) this.log.warn(signal, `platform alarm: ${signal.check}`);
      else if (signal.check in this.state) this.log.debug(signal, `platform alarm clear: ${signal.check}`);
      try {
        this.deps.onSignal(signal);
      } catch (err) {
        this.log.error({ err: (err as Error).message, check: signal.check }, 'raising a platform alarm failed');
      }
    }
  }
}
