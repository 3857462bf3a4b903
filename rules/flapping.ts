/**
 * Flapping detection (contract: `flapping: { window, max_changes }`): an alert that changes level
 * or state more than max_changes times within the window is flapping until it has been stable
 * for one window. Counted on the platform clock (the one notifications run on); in replay the
 * platform clock is event time.
 *
 * Rules mark their events (RuleEvent.flapping) and tick() emits the `ended` event; holding the
 * notifications and sending the summary is the alert stage's part.
 */
import type { CompiledRule } from './compile.js';
import { scheduleDue, scheduleSweep, type FlapState, type RuleState } from './state.js';
import type { RuleEvent } from './types.js';

export function flapKey(assetId: string, sensorId: string): string {
  return `${assetId}\u0000${sensorId}`;
}

/** Records one level change of a rule with `flapping` and marks the event. */
export function markFlapping(rule: CompiledRule, state: RuleState, event: RuleEvent, now: number): void {
  const config = rule.flapping;
  if (config === undefined) return;
  let byKey = state.flapping.get(rule.id);
  if (byKey === undefined) state.flapping.set(rule.id, (byKey = new Map<string, FlapState>()));
  const key = flapKey(event.assetId, event.sensorId);
  let fs: FlapState | undefined = byKey.get(key);
  if (fs === undefined) {
    fs = { times: [], flapping: false, changesWhileFlapping: 0, lastChangeAt: now, last: lastOf(event) };
    byKey.set(key, fs);
    scheduleSweep(state, now);
  }
  const times = fs.times;
  times.push(now);
  const cutoff = now - config.windowMs;
  while (times.length > 0 && times[0]! <= cutoff) times.shift();
  while (times.length > config.maxChanges + 1) times.shift();
  fs.lastChangeAt = now;
  fs.last = lastOf(event);
  if (fs.flapping) {
    fs.changesWhileFlapping++;
    event.flapping = 'flapping';
  } else if (times.length > config.maxChanges) {
    fs.flapping = true;
    fs.changesWhileFlapping = times.length;
    event.flapping = 'started';
  }
  if (fs.flapping) {
    event.changes = fs.changesWhileFlapping;
    scheduleDue(state, now + config.windowMs);
  }
}

function lastOf(event: RuleEvent): FlapState['last'] {
  return { assetId: event.assetId, sensorId: event.sensorId, metric: event.metric, level: event.level, value: event.value, threshold: event.threshold };
}

/**
 * Ends flapping that has been stable for one window; returns the `ended` events. Forgets records
 * without a change in the window. Returns the earliest time a flapping alert can end, or Infinity.
 */
export function endFlapping(rules: (id: string) => CompiledRule | undefined, state: RuleState, now: number, events: RuleEvent[]): number {
  let due = Infinity;
  for (const [ruleId, byKey] of state.flapping) {
    const config = rules(ruleId)?.flapping;
    if (config === undefined) {
      state.flapping.delete(ruleId);
      continue;
    }
    for (const [key, fs] of byKey) {
      if (fs.flapping) {
        const end = fs.lastChangeAt + config.windowMs;
        if (now >= end) {
          fs.flapping = false;
          events.push({ ruleId, ...fs.last, ts: now, flapping: 'ended', changes: fs.changesWhileFlapping });
          fs.changesWhileFlapping = 0;
        } else if (end < due) due = end;
      }
      if (!fs.flapping) {
        const cutoff = now - config.windowMs;
        while (fs.times.length > 0 && fs.times[0]! <= cutoff) fs.times.shift();
        if (fs.times.length === 0) byKey.delete(key);
      }
    }
    if (byKey.size === 0) state.flapping.delete(ruleId);
  }
  return due;
}
