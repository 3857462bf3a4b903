import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { params } from '../test/support/property.js';
import { memberAt, onCallAt, onCallNowAndNext, overrideAt, shiftAt, shiftStart, wallToInstant, zoneOffset, type Override, type Schedule } from './oncall.js';

const H = 3_600_000;
const D = 24 * H;

function schedule(overrides: Partial<Schedule['rotation']> = {}, timeZone = 'Asia/Shanghai'): Schedule {
  return { id: 'water-oncall', time_zone: timeZone, rotation: { members: ['zhang-san', 'li-si', 'wang-wu'], shift: D, handoff: '08:30', start: '2026-12-01', ...overrides } };
}

const iso = (t: number) => new Date(t).toISOString();

describe('zone arithmetic', () => {
  it('reads offsets from Intl', () => {
    expect(zoneOffset('Asia/Shanghai', Date.parse('2026-12-01T00:00:00Z'))).toBe(8 * H);
    expect(zoneOffset('Asia/Kathmandu', Date.parse('2026-12-01T00:00:00Z'))).toBe(5.75 * H);
    expect(zoneOffset('Europe/Berlin', Date.parse('2026-07-01T00:00:00Z'))).toBe(2 * H);
    expect(zoneOffset('Europe/Berlin', Date.parse('2026-12-01T00:00:00Z'))).toBe(1 * H);
  });

  it('maps wall time to instants, including the daylight-saving gap and overlap', () => {
    expect(iso(wallToInstant('Asia/Shanghai', Date.UTC(2026, 11, 1, 8, 30)))).toBe('2026-12-01T00:30:00.000Z');
    // Berlin 2026-03-29 02:30 does not exist (02:00 -> 03:00): the instant an hour on, 03:30 CEST.
    expect(iso(wallToInstant('Europe/Berlin', Date.UTC(2026, 2, 29, 2, 30)))).toBe('2026-03-29T01:30:00.000Z');
    // Berlin 2026-10-25 02:30 happens twice: the earlier, still CEST.
    expect(iso(wallToInstant('Europe/Berlin', Date.UTC(2026, 9, 25, 2, 30)))).toBe('2026-10-25T00:30:00.000Z');
  });
});

describe('rotation', () => {
  it('hands off at 08:30 Shanghai time to each member in turn, across a month end', () => {
    const s = schedule();
    expect(shiftAt(s, Date.parse('2026-12-01T00:30:00Z'))).toEqual({ index: 0, member: 'zhang-san', start: Date.parse('2026-12-01T00:30:00Z'), end: Date.parse('2026-12-02T00:30:00Z') });
    expect(shiftAt(s, Date.parse('2026-12-02T00:29:59.999Z')).member).toBe('zhang-san');
    expect(shiftAt(s, Date.parse('2026-12-02T00:30:00Z')).member).toBe('li-si');
    // 2026-12-31 08:30 is shift 30 (zhang-san), 2027-01-01 08:30 shift 31 (li-si).
    expect(shiftAt(s, Date.parse('2026-12-31T12:00:00Z'))).toMatchObject({
      index: 30,
      member: 'zhang-san',
      start: Date.parse('2026-12-31T00:30:00Z'),
      end: Date.parse('2027-01-01T00:30:00Z'),
    });
    expect(shiftAt(s, Date.parse('2027-01-01T00:30:00Z'))).toMatchObject({ index: 31, member: 'li-si' });
    // February of a non-leap year: 2027-02-28 08:30 -> 2027-03-01 08:30.
    expect(shiftAt(s, Date.parse('2027-02-28T12:00:00Z'))).toMatchObject({ start: Date.parse('2027-02-28T00:30:00Z'), end: Date.parse('2027-03-01T00:30:00Z') });
  });

  it('extends before its start', () => {
    const s = schedule();
    expect(shiftAt(s, Date.parse('2026-12-01T00:29:00Z'))).toMatchObject({ index: -1, member: 'wang-wu', start: Date.parse('2026-11-30T00:30:00Z') });
  });

  it('counts absolute time for shifts that are not whole days', () => {
    const s = schedule({ shift: 12 * H, handoff: '08:00' });
    expect(shiftAt(s, Date.parse('2026-12-01T12:00:00Z'))).toMatchObject({ index: 1, member: 'li-si', start: Date.parse('2026-12-01T12:00:00Z'), end: Date.parse('2026-12-02T00:00:00Z') });
  });

  it('keeps the wall-clock hand-off across daylight saving (the shift spanning the change is 23h)', () => {
    const s = schedule({ start: '2026-03-27', handoff: '08:00' }, 'Europe/Berlin');
    const shift = shiftAt(s, Date.parse('2026-03-29T03:00:00Z'));
    expect(iso(shift.start)).toBe('2026-03-28T07:00:00.000Z');
    expect(iso(shift.end)).toBe('2026-03-29T06:00:00.000Z');
  });
});

describe('overrides', () => {
  const s = schedule();
  const t0 = Date.parse('2026-12-01T00:30:00Z');
  const swap: Override = { id: 'ov1', member: 'li-si', startsAt: t0 + 2 * H, endsAt: t0 + 6 * H, createdAt: 1 };

  it('take precedence inside their window only', () => {
    expect(memberAt(s, [swap], t0 + 2 * H - 1)).toBe('zhang-san');
    expect(memberAt(s, [swap], t0 + 2 * H)).toBe('li-si');
    expect(memberAt(s, [swap], t0 + 6 * H - 1)).toBe('li-si');
    expect(memberAt(s, [swap], t0 + 6 * H)).toBe('zhang-san');
  });

  it('the latest created wins where windows overlap', () => {
    const later: Override = { id: 'ov0', member: 'wang-wu', startsAt: t0 + 4 * H, endsAt: t0 + 8 * H, createdAt: 2 };
    expect(overrideAt([swap, later], t0 + 5 * H)?.id).toBe('ov0');
    expect(memberAt(s, [later, swap], t0 + 3 * H)).toBe('li-si');
  });

  it('now and next with times around an override', () => {
    const { current, next } = onCallNowAndNext(s, [swap], t0 + 3 * H);
    expect(current).toEqual({ member: 'li-si', from: t0 + 2 * H, until: t0 + 6 * H, overrideId: 'ov1' });
    expect(next).toEqual({ member: 'zhang-san', from: t0 + 6 * H, until: t0 + D });
    // li-si's own shift follows zhang-san's: the span after is li-si for a day.
    expect(onCallAt(s, [swap], t0 + 7 * H)).toEqual({ member: 'zhang-san', from: t0 + 6 * H, until: t0 + D });
    expect(onCallAt(s, [swap], t0 + D)).toEqual({ member: 'li-si', from: t0 + D, until: t0 + 2 * D });
  });

  it('a swap to the member already on call merges into one span', () => {
    const same: Override = { id: 'ov2', member: 'zhang-san', startsAt: t0 + 2 * H, endsAt: t0 + 30 * H, createdAt: 1 };
    expect(onCallAt(s, [same], t0 + H)).toEqual({ member: 'zhang-san', from: t0, until: t0 + 30 * H });
  });
});

const NO_DST_ZONES = ['Asia/Shanghai', 'UTC', 'Asia/Kolkata', 'Asia/Kathmandu', 'Asia/Tokyo', 'Pacific/Kiritimati'];
const DST_ZONES = ['Europe/Berlin', 'America/New_York', 'Australia/Sydney', 'Australia/Lord_Howe'];

const arbSchedule = (zones: string[]) =>
  fc.record({
    id: fc.constant('s'),
    time_zone: fc.constantFrom(...zones),
    rotation: fc.record({
      members: fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'd', 'e'), { minLength: 1, maxLength: 5 }),
      shift: fc.oneof(
        fc.constantFrom(D, 2 * D, 7 * D, 12 * H, 8 * H),
        fc.integer({ min: 1, max: 72 }).map((n) => n * 15 * 60_000),
      ),
      handoff: fc.tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 })).map(([h, m]) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`),
      start: fc.date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2030-12-31T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10)),
    }),
  });
const arbInstant = fc.integer({ min: Date.parse('2019-06-01T00:00:00Z'), max: Date.parse('2031-06-01T00:00:00Z') });

describe('on-call properties', () => {
  it('the rotation covers time without gaps: the shift at t contains t and the next starts where it ends', () => {
    fc.assert(
      fc.property(arbSchedule([...NO_DST_ZONES, ...DST_ZONES]), arbInstant, (s, t) => {
        const shift = shiftAt(s, t);
        expect(shift.start).toBeLessThanOrEqual(t);
        expect(shift.end).toBeGreaterThan(t);
        const next = shiftAt(s, shift.end);
        expect(next.start).toBe(shift.end);
        expect(next.index).toBe(shift.index + 1);
        expect(shiftAt(s, shift.start - 1).end).toBe(shift.start);
      }),
      params(),
    );
  });

  it('in zones without daylight saving every shift is exactly `shift` long and whole-day shifts hand off at `handoff`', () => {
    fc.assert(
      fc.property(arbSchedule(NO_DST_ZONES), arbInstant, (s, t) => {
        const shift = shiftAt(s, t);
        expect(shift.end - shift.start).toBe(s.rotation.shift);
        if (s.rotation.shift % D === 0) {
          const wall = new Date(shift.start + zoneOffset(s.time_zone, shift.start)).toISOString().slice(11, 16);
          expect(wall).toBe(s.rotation.handoff);
        }
      }),
      params(),
    );
  });

  it('in zones with daylight saving whole-day shifts hand off at `handoff` (or just after a skipped hour)', () => {
    fc.assert(
      fc.property(
        arbSchedule(DST_ZONES).filter((s) => s.rotation.shift % D === 0),
        arbInstant,
        (s, t) => {
          const shift = shiftAt(s, t);
          expect(Math.abs(shift.end - shift.start - s.rotation.shift)).toBeLessThanOrEqual(H);
          expect(shiftStart(s, shift.index)).toBe(shift.start);
        },
      ),
      params(),
    );
  });

  it('members take turns in order', () => {
    fc.assert(
      fc.property(arbSchedule(NO_DST_ZONES), arbInstant, (s, t) => {
        const shift = shiftAt(s, t);
        const members: readonly string[] = s.rotation.members;
        const next = shiftAt(s, shift.end);
        expect(next.member).toBe(members[(members.indexOf(shift.member) + 1) % members.length]);
      }),
      params(),
    );
  });

  const arbOverrides = fc.array(
    fc
      .record({
        id: fc.string({ minLength: 1, maxLength: 4 }),
        member: fc.constantFrom('a', 'b', 'x', 'y'),
        startsAt: arbInstant,
        length: fc.integer({ min: 1, max: 10 * D }),
        createdAt: fc.integer({ min: 0, max: 5 }),
      })
      .map(({ length, ...o }) => ({ ...o, endsAt: o.startsAt + length })),
    { maxLength: 6 },
  );

  it('overrides take precedence only inside their window, the latest created winning', () => {
    fc.assert(
      fc.property(arbSchedule(NO_DST_ZONES), arbOverrides, arbInstant, (s, overrides, t) => {
        const inside = overrides.filter((o) => o.startsAt <= t && t < o.endsAt);
        const latest = inside.reduce<Override | undefined>((best, o) => (!best || o.createdAt > best.createdAt || (o.createdAt === best.createdAt && o.id > best.id) ? o : best), undefined);
        expect(memberAt(s, overrides, t)).toBe(latest ? latest.member : shiftAt(s, t).member);
      }),
      params(),
    );
  });

  it('on-call spans contain the instant, tile time and hand off to someone else', () => {
    fc.assert(
      fc.property(arbSchedule(NO_DST_ZONES), arbOverrides, arbInstant, (s, overrides, t) => {
        const { current, next } = onCallNowAndNext(s, overrides, t);
        expect(current.from).toBeLessThanOrEqual(t);
        expect(current.until).toBeGreaterThan(t);
        expect(current.member).toBe(memberAt(s, overrides, t));
        expect(next.from).toBe(current.until);
        expect(memberAt(s, overrides, current.until - 1)).toBe(current.member);
        expect(memberAt(s, overrides, current.from)).toBe(current.member);
        if (s.rotation.members.length > 1 || overrides.length > 0) {
          // The span merges at most a bounded number of pieces; past that the member may repeat.
          if (next.member === current.member) expect(current.until - current.from).toBeGreaterThanOrEqual(s.rotation.shift);
        }
      }),
      params(200),
    );
  });
});
