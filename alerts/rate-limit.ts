/**
 * Sliding-window send limits per key (a channel, or a channel and one recipient), pure: the
 * caller passes the time. A key may have several windows (Feishu: 5 a second and 100 a minute);
 * a send is allowed only when every window has room. A provider that answers "too fast" can
 * block a key until a given time.
 */
import type { RateLimit } from './config.js';

export class RateLimiter {
  /** Send times per key, oldest first, kept for the longest window. */
  private readonly sends = new Map<string, number[]>();
  private readonly blockedUntil = new Map<string, number>();
  private readonly longest: number;

  constructor(private readonly limits: readonly RateLimit[]) {
    this.longest = Math.max(0, ...limits.map((l) => l.per));
  }

  get limited(): boolean {
    return this.limits.length > 0;
  }

  /** How many sends `key` may make at `now` (Infinity without limits). */
  room(key: string, now: number): number {
    if ((this.blockedUntil.get(key) ?? 0) > now) return 0;
    if (!this.limited) return Infinity;
    const times = this.prune(key, now);
    let room = Infinity;
    for (const limit of this.limits) {
      const inWindow = countSince(times, now - limit.per);
      room = Math.min(room, limit.max - inWindow);
    }
    return Math.max(0, room);
  }

  /** The earliest time at which `key` has room again (now when it has room). */
  nextFree(key: string, now: number): number {
    const blocked = this.blockedUntil.get(key) ?? 0;
    let at = Math.max(now, blocked);
    if (!this.limited) return at;
    const times = this.prune(key, now);
    for (const limit of this.limits) {
      const inWindow = times.filter((t) => t > at - limit.per);
      if (inWindow.length >= limit.max) {
        // The window frees a slot when its oldest send that keeps it full leaves it.
        at = Math.max(at, inWindow[inWindow.length - limit.max]! + limit.per);
      }
    }
    return at;
  }

  record(key: string, at: number): void {
    if (!this.limited) return;
    let times = this.sends.get(key);
    if (!times) this.sends.set(key, (times = []));
    times.push(at);
    if (times.length > 1 && times[times.length - 2]! > at) times.sort((a, b) => a - b);
  }

  /** The provider said "too fast": no sends on `key` before `until`. */
  block(key: string, until: number): void {
    this.blockedUntil.set(key, Math.max(until, this.blockedUntil.get(key) ?? 0));
  }

  private prune(key: string, now: number): number[] {
    const times = this.sends.get(key);
    if (!times) return [];
    const cutoff = now - this.longest;
    let drop = 0;
    while (drop < times.length && times[drop]! <= cutoff) drop++;
    if (drop > 0) times.splice(0, drop);
    if (times.length === 0) this.sends.delete(key);
    return times;
  }
}

/** Sends strictly after `since` (a send at exactly now - per has left the window). */
function countSince(times: readonly number[], since: number): number {
  let n = 0;
  for (let i = times.length - 1; i >= 0 && times[i]! > since; i--) n++;
  return n;
}
