/**
 * Decides whether the spool may keep writing groups on the event loop (spool.ts, writeAndSync).
 * A write + fdatasync that blocks the loop costs every connection that long; one that goes
 * through the thread pool costs a turn of a busy loop instead. One slow group on a shared disk
 * says little, so the judgement is on a moving average of group times (exponential, weight
 * 0.1 per group): the spool moves to the thread pool when the average passes `limitMs`, or at
 * once when a single group takes `stallFactor` times the limit (the disk stalled). Pure: the
 * caller measures and keeps the clock.
 */
export class InlineWrites {
  private average = 0;

  constructor(
    private readonly limitMs: number,
    private readonly weight = 0.1,
    private readonly stallFactor = 10,
  ) {}

  /** Records one inline group's time (ms); true when writing should move to the thread pool. */
  tooSlow(ms: number): boolean {
    this.average += this.weight * (ms - this.average);
    return this.average > this.limitMs || ms > this.stallFactor * this.limitMs;
  }

  /** Starts over (after a period in the thread pool). */
  reset(): void {
    this.average = 0;
  }

  /** The moving average of group times (ms). */
  averageMs(): number {
    return this.average;
  }
}
