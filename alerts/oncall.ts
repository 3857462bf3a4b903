/**
 * On-call arithmetic: who is on duty at an instant, and who comes next. Pure: the schedule,
 * the overrides and the instant are passed in; nothing here reads the clock.
 *
 * A rotation hands off at `handoff` (wall-clock time in the schedule's zone), first on the
 * `start` date, to `members[0]`, then to each member in turn every `shift`:
 * - a shift of whole days hands off at the same wall-clock time every time, so in a zone with
 *   daylight saving the shift that spans a change is an hour shorter or longer;
 * - any other shift length (e.g. 12h) counts absolute time from the first hand-off.
 * In zones without daylight saving (Asia/Shanghai, UTC, Asia/Kolkata, ...) every shift is exactly
 * `shift` long. The rotation extends before its start too, so a schedule always has someone on
 * call.
 *
 * Overrides (temporary swaps) put `member` on call for [starts_at, ends_at); where several
 * overlap, the one created last wins. Outside every override window the rotation decides.
 */

const DAY_MS = 86_400_000;
/** Bounds the merging of adjacent spans with the same member (a one-member rotation never changes). */
const MAX_MERGED_SPANS = 64;

export interface Rotation {
  members: readonly string[];
  /** Shift length, ms. */
  shift: number;
  /** "HH:MM", wall-clock time in the schedule's zone. */
  handoff: string;
  /** "YYYY-MM-DD", the date of the first hand-off in the schedule's zone. */
  start: string;
}

export interface Schedule {
  id: string;
  time_zone: string;
  rotation: Rotation;
}

export interface Override {
  id: string;
  member: string;
  /** Epoch ms, inclusive. */
  startsAt: number;
  /** Epoch ms, exclusive. */
  endsAt: number;
  /** Epoch ms; a later override wins where windows overlap (ties: the later id in sort order). */
  createdAt: number;
}

/** One shift of the rotation. */
export interface Shift {
  /** Shift number: 0 starts at the first hand-off, negative ones before it. */
  index: number;
  member: string;
  start: number;
  end: number;
}

/** A span during which one member is on call. */
export interface OnCallSpan {
  member: string;
  /** Epoch ms, inclusive. */
  from: number;
  /** Epoch ms, exclusive: the next hand-off. */
  until: number;
  /** The override that puts `member` on call at the instant asked about, if any. */
  overrideId?: string;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The zone's offset from UTC at an instant, ms (Asia/Shanghai: +8h). */
export function zoneOffset(timeZone: string, instant: number): number {
  const parts = { year: 0, month: 1, day: 1, hour: 0, minute: 0, second: 0 };
  for (const p of formatterFor(timeZone).formatToParts(new Date(instant))) if (p.type in parts) parts[p.type as keyof typeof parts] = Number(p.value);
  const wall = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second);
  // Intl has second precision; the offset is wall time minus the instant rounded down to the second.
  return wall - Math.floor(instant / 1000) * 1000;
}

/**
 * The instant at which the zone's clocks show `wall` (wall-clock time written as if it were UTC).
 * A wall time shown twice (clocks set back) maps to the earlier instant; one skipped (clocks set
 * forward) to the instant as many minutes past the change as it lies past the gap's start.
 * Assumes at most one offset change within a day of `wall`, as in every real zone.
 */
export function wallToInstant(timeZone: string, wall: number): number {
  const before = wall - zoneOffset(timeZone, wall - DAY_MS);
  const after = wall - zoneOffset(timeZone, wall + DAY_MS);
  const shows = (instant: number) => instant + zoneOffset(timeZone, instant) === wall;
  const earlier = Math.min(before, after);
  const later = Math.max(before, after);
  if (shows(earlier)) return earlier;
  if (shows(later)) return later;
  return before;
}

function parseHandoff(rotation: Rotation): { y: number; m: number; d: number; minutes: number } {
  const [y, m, d] = rotation.start.split('-').map(Number) as [number, number, number];
  const [hh, mm] = rotation.handoff.split(':').map(Number) as [number, number];
  return { y, m, d, minutes: hh * 60 + mm };
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}

/** Start of shift `index`. */
export function shiftStart(schedule: Schedule, index: number): number {
  const { rotation } = schedule;
  const { y, m, d, minutes } = parseHandoff(rotation);
  if (rotation.shift % DAY_MS === 0) {
    const days = index * (rotation.shift / DAY_MS);
    // Date.UTC normalises day overflow, so month ends and leap years come out right.
    return wallToInstant(schedule.time_zone, Date.UTC(y, m - 1, d + days, 0, minutes));
  }
  return wallToInstant(schedule.time_zone, Date.UTC(y, m - 1, d, 0, minutes)) + index * rotation.shift;
}

/** The rotation's shift that contains `instant`. */
export function shiftAt(schedule: Schedule, instant: number): Shift {
  const first = shiftStart(schedule, 0);
  let index = Math.floor((instant - first) / schedule.rotation.shift);
  // Whole-day shifts vary by a daylight-saving hour at most, so this settles in a step or two.
  for (let i = 0; i < 4 && shiftStart(schedule, index) > instant; i++) index--;
  for (let i = 0; i < 4 && shiftStart(schedule, index + 1) <= instant; i++) index++;
  const members = schedule.rotation.members;
  return { index, member: members[mod(index, members.length)]!, start: shiftStart(schedule, index), end: shiftStart(schedule, index + 1) };
}

/** The override in force at `instant`: the latest created whose window contains it. */
export function overrideAt(overrides: readonly Override[], instant: number): Override | undefined {
  let best: Override | undefined;
  for (const o of overrides) {
    if (o.startsAt > instant || instant >= o.endsAt) continue;
    if (!best || o.createdAt > best.createdAt || (o.createdAt === best.createdAt && o.id > best.id)) best = o;
  }
  return best;
}

/** The member on call at `instant`. */
export function memberAt(schedule: Schedule, overrides: readonly Override[], instant: number): string {
  return overrideAt(overrides, instant)?.member ?? shiftAt(schedule, instant).member;
}

/** The span around `instant` in which neither the shift nor the override in force changes. */
function pieceAt(schedule: Schedule, overrides: readonly Override[], instant: number): { member: string; from: number; until: number; overrideId?: string } {
  const shift = shiftAt(schedule, instant);
  let from = shift.start;
  let until = shift.end;
  for (const o of overrides) {
    for (const edge of [o.startsAt, o.endsAt]) {
      if (edge <= instant && edge > from) from = edge;
      if (edge > instant && edge < until) until = edge;
    }
  }
  const o = overrideAt(overrides, instant);
  return o ? { member: o.member, from, until, overrideId: o.id } : { member: shift.member, from, until };
}

/** Extends a piece forward over adjacent pieces of the same member, up to a bound. */
function mergeForward(schedule: Schedule, overrides: readonly Override[], piece: ReturnType<typeof pieceAt>): number {
  let until = piece.until;
  for (let i = 0; i < MAX_MERGED_SPANS; i++) {
    const next = pieceAt(schedule, overrides, until);
    if (next.member !== piece.member) break;
    until = next.until;
  }
  return until;
}

/**
 * Who is on call at `instant`, from when and until the next hand-off to someone else (adjacent
 * spans of the same member are merged, up to a bound).
 */
export function onCallAt(schedule: Schedule, overrides: readonly Override[], instant: number): OnCallSpan {
  const piece = pieceAt(schedule, overrides, instant);
  const until = mergeForward(schedule, overrides, piece);
  let from = piece.from;
  for (let i = 0; i < MAX_MERGED_SPANS; i++) {
    const previous = pieceAt(schedule, overrides, from - 1);
    if (previous.member !== piece.member) break;
    from = previous.from;
  }
  return { member: piece.member, from, until, ...(piece.overrideId ? { overrideId: piece.overrideId } : {}) };
}

/** Who is on call now and who takes over at the next hand-off (from then on). */
export function onCallNowAndNext(schedule: Schedule, overrides: readonly Override[], now: number): { current: OnCallSpan; next: OnCallSpan } {
  const current = onCallAt(schedule, overrides, now);
  const piece = pieceAt(schedule, overrides, current.until);
  const next: OnCallSpan = { member: piece.member, from: current.until, until: mergeForward(schedule, overrides, piece), ...(piece.overrideId ? { overrideId: piece.overrideId } : {}) };
  return { current, next };
}
