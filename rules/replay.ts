/**
 * Runs recorded readings and device status through rules on event time, with the platform clock
 * simulated as event time: before each item, every timed check that falls due up to its ts
 * (stale sensors, offline devices, flapping ends) runs at exactly its due time, as the platform's
 * tick timer would have run it. Deterministic: the same items give the same events.
 */
import type { Reading } from '../ingest/reading.js';
import type { RuleRunner } from './rule-runner.js';
import type { DeviceRef } from './state.js';
import type { RuleEvent } from './types.js';

export type ReplayItem = { kind: 'reading'; ts: number; reading: Reading } | { kind: 'presence'; ts: number; device: DeviceRef; status: 'online' | 'offline' };

/**
 * Feeds `items` (sorted by ts; equal ts keep their order) and returns every rule event in order.
 * `end` (default: the last item's ts) is how far the clock runs after the last item, so a sensor
 * that falls silent at the end of the recording still shows its stale alert.
 */
export function replayOnEventTime(runner: RuleRunner, items: Iterable<ReplayItem>, end?: number): RuleEvent[] {
  const events: RuleEvent[] = [];
  let clock = -Infinity;
  const advance = (to: number): void => {
    for (;;) {
      const due = runner.dueAt();
      if (due > to) break;
      clock = Math.max(clock, due);
      for (const event of runner.tick(clock)) events.push(event);
    }
    if (to > clock) clock = to;
  };
  let last = -Infinity;
  for (const item of items) {
    if (item.ts < last) throw new Error(`replay items must be sorted by ts (${item.ts} after ${last})`);
    last = item.ts;
    advance(item.ts);
    const produced = item.kind === 'reading' ? runner.process([item.reading], item.ts) : runner.presence(item.device, item.status, item.ts);
    for (const event of produced) events.push(event);
  }
  const stop = end ?? last;
  if (Number.isFinite(stop)) advance(stop);
  return events;
}
