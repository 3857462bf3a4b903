/**
 * One setTimeout armed for an absolute time on the injected clock. The escalation schedule and
 * the outbox keep their due times in the database; this only wakes them up when the earliest
 * one comes due.
 */
import type { Clock } from '../lib/clock.js';

/** setTimeout's largest delay; a later due time wakes up early and simply re-arms. */
const MAX_DELAY_MS = 2_147_483_647;

export class DueTimer {
  private handle: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly onDue: () => void,
  ) {}

  /** Arms the timer for `at` (epoch ms), replacing any earlier arming; undefined disarms it. */
  arm(at: number | undefined): void {
    this.clear();
    if (at === undefined) return;
    const delay = Math.min(Math.max(0, at - this.clock.now()), MAX_DELAY_MS);
    this.handle = setTimeout(() => {
      this.handle = undefined;
      this.onDue();
    }, delay);
  }

  clear(): void {
    if (this.handle !== undefined) clearTimeout(this.handle);
    this.handle = undefined;
  }
}
