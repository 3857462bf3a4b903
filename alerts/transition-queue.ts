/**
 * Rule events waiting to be stored. Readings are acknowledged once they are durable in the spool,
 * before rules run, so a rule event whose transaction fails (disk full, I/O error, database busy)
 * cannot be handed back to the device: it is kept here, in order, and retried with backoff until
 * alerts.db takes it. Later events queue behind it, so nothing is applied out of order.
 *
 * While anything waits the queue reports `failing`; once it holds `maxItems` events the platform
 * stops acknowledging readings (`accepting()` is false), so devices resend instead of memory
 * growing without bound. Events still waiting when the process ends are gone, but nothing
 * recorded is: at the next start the rules are seeded from the alerts in alerts.db, so a
 * condition that still holds opens its alert again with the next reading.
 */
import type { Clock } from '../lib/clock.js';
import { DueTimer } from './due-timer.js';

export interface TransitionQueueOptions<T> {
  clock: Clock;
  /** Stores one item; throws when it cannot (the item is then retried, unchanged, later). */
  apply: (item: T) => void;
  /** The first failure of a run of failures. */
  onFailing: (error: unknown, since: number, waiting: number) => void;
  /** A retry failed again. */
  onStillFailing?: (error: unknown, since: number, waiting: number) => void;
  /** Everything that waited is stored; may push more items, which are stored next. */
  onRecovered: (since: number, stored: number) => void;
  /** Called after a run of applies (also a retry), for work that follows them. */
  afterRun?: () => void;
  maxItems?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export const DEFAULT_MAX_QUEUED_TRANSITIONS = 10_000;

export class TransitionQueue<T> {
  private readonly items: T[] = [];
  private readonly timer: DueTimer;
  private failingSince: number | undefined;
  private lastError: unknown;
  private attempts = 0;
  private storedWhileFailing = 0;
  private draining = false;

  constructor(private readonly options: TransitionQueueOptions<T>) {
    this.timer = new DueTimer(options.clock, () => this.retry());
  }

  get size(): number {
    return this.items.length;
  }

  /** When the current run of failures began, if one is on. */
  get since(): number | undefined {
    return this.failingSince;
  }

  get error(): unknown {
    return this.lastError;
  }

  /** False once the queue is full: the platform should stop acknowledging readings. */
  accepting(): boolean {
    return this.items.length < (this.options.maxItems ?? DEFAULT_MAX_QUEUED_TRANSITIONS);
  }

  /** Stores the items in order now, or queues them behind those already waiting. */
  push(items: readonly T[]): void {
    for (const item of items) this.items.push(item);
    if (this.failingSince === undefined) this.drain();
  }

  /** One last attempt (at stop); what cannot be stored stays queued. */
  flush(): void {
    this.timer.clear();
    if (this.items.length > 0) this.drain();
    this.timer.clear();
  }

  stop(): void {
    this.timer.clear();
  }

  private retry(): void {
    this.drain();
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.items.length > 0) {
        try {
          this.options.apply(this.items[0]!);
        } catch (error) {
          this.failed(error);
          return;
        }
        this.items.shift();
        if (this.failingSince === undefined) continue;
        this.storedWhileFailing++;
        if (this.items.length > 0) continue;
        const since = this.failingSince;
        const stored = this.storedWhileFailing;
        this.failingSince = undefined;
        this.lastError = undefined;
        this.attempts = 0;
        this.storedWhileFailing = 0;
        // May queue more (a record of the outage): the loop stores it too.
        this.report(() => this.options.onRecovered(since, stored));
      }
    } finally {
      this.draining = false;
      this.report(() => this.options.afterRun?.());
    }
  }

  private failed(error: unknown): void {
    const now = this.options.clock.now();
    this.lastError = error;
    this.attempts++;
    const base = this.options.baseDelayMs ?? 500;
    const delay = Math.min(this.options.maxDelayMs ?? 30_000, base * 2 ** Math.min(this.attempts - 1, 16));
    this.timer.arm(now + delay);
    const first = this.failingSince === undefined;
    this.failingSince ??= now;
    this.report(() => (first ? this.options.onFailing(error, now, this.items.length) : this.options.onStillFailing?.(error, this.failingSince!, this.items.length)));
  }

  /** Runs a callback; one that throws never stops the retries nor reaches the caller of push(). */
  private report(fn: () => void): void {
    try {
      fn();
    } catch {
      // The callbacks log and publish; a failure of theirs leaves nothing to do here.
    }
  }
}
