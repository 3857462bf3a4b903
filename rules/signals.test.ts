import { describe, expect, it } from 'vitest';
import { MAX_SLOTS, SampleWindow, signalUnit, windowSignal, windowSignalAt } from './signals.js';

const H = 3_600_000;
const D = 86_400_000;

function filled(windowMs: number, points: Array<[number, number]>): SampleWindow {
  const w = new SampleWindow(windowMs);
  for (const [ts, v] of points) {
    w.push(ts, v);
    w.prune(ts);
  }
  return w;
}

describe('SampleWindow', () => {
  it('keeps the readings of (t - W, t] and aggregates them', () => {
    const w = filled(3 * H, [
      [0, 5],
      [H, 1],
      [2 * H, 9],
      [3 * H, 4],
    ]); // the reading at 0 is exactly W old: out
    expect([w.count, w.sum, w.min, w.max, w.firstTs, w.first, w.lastTs, w.last]).toEqual([3, 14, 1, 9, H, 1, 3 * H, 4]);
    w.push(4 * H, 2);
    w.prune(4 * H); // drops the reading at 1h (the minimum)
    expect([w.count, w.sum, w.min, w.max]).toEqual([3, 15, 2, 9]);
    w.push(5 * H + 1, 3);
    w.prune(5 * H + 1); // drops 9 (the maximum)
    expect([w.count, w.sum, w.min, w.max]).toEqual([3, 9, 2, 4]);
    w.push(100 * H, 7);
    w.prune(100 * H);
    expect([w.count, w.sum, w.min, w.max, w.slots]).toEqual([1, 7, 7, 7, 1]);
  });

  it('sums exactly: 1,000 rain tips of 0.1 mm make exactly 100 mm, also after evictions', () => {
    const w = new SampleWindow(D);
    for (let i = 0; i < 1000; i++) w.push(i * 60_000, 0.1);
    expect(w.sum).toBe(100);
    let plain = 0;
    for (let i = 0; i < 1000; i++) plain += 0.1;
    expect(plain).not.toBe(100); // what an uncompensated running sum would have said
    for (let i = 1000; i < 3000; i++) {
      w.push(i * 60_000, 0.1);
      w.prune(i * 60_000);
    }
    expect(w.count).toBe(1440);
    expect(w.sum).toBe(144);
  });

  it('stays bounded at any reporting rate: readings closer than W/512 share a slot', () => {
    const w = new SampleWindow(H); // slot width 7031 ms
    expect(w.slotMs).toBe(Math.floor(H / MAX_SLOTS));
    for (let ts = 0; ts <= 3 * H; ts += 100) {
      w.push(ts, ts % 1000 === 0 ? 2 : 1);
      w.prune(ts);
    }
    expect(w.slots).toBeLessThanOrEqual(MAX_SLOTS + 2);
    // Every reading of the last hour is counted, plus at most one slot width at the old edge.
    expect(w.count).toBeGreaterThanOrEqual(36_000);
    expect(w.count).toBeLessThanOrEqual(36_000 + w.slotMs / 100);
    expect([w.min, w.max]).toEqual([1, 2]);
  });

  it('view() aggregates the part after a cutoff without changing the window', () => {
    const w = filled(10 * H, [
      [H, 1],
      [2 * H, 2],
      [3 * H, 3],
    ]);
    const v = w.view(1.5 * H, { count: 0, sum: 0, min: 0, max: 0, firstTs: 0, first: 0, lastTs: 0, last: 0 });
    expect(v).toEqual({ count: 2, sum: 5, min: 2, max: 3, firstTs: 2 * H, first: 2, lastTs: 3 * H, last: 3 });
    expect(w.count).toBe(3);
  });
});

describe('signals', () => {
  it('aggregates', () => {
    const w = filled(H, [
      [0, 4],
      [600_000, 8],
      [1_200_000, 3],
    ]);
    expect(windowSignal({ kind: 'sum', windowMs: H }, w)).toBe(15);
    expect(windowSignal({ kind: 'avg', windowMs: H }, w)).toBe(5);
    expect(windowSignal({ kind: 'min', windowMs: H }, w)).toBe(3);
    expect(windowSignal({ kind: 'max', windowMs: H }, w)).toBe(8);
  });

  it('rate: change per period over the window, once the readings span half of it', () => {
    const rate = { kind: 'rate', perMs: D, windowMs: 6 * H } as const;
    const w = new SampleWindow(rate.windowMs);
    const at = (ts: number, v: number) => {
      w.push(ts, v);
      w.prune(ts);
      return windowSignal(rate, w);
    };
    expect(at(0, 10)).toBeNaN(); // one reading: no rate
    expect(at(2 * H, 10.5)).toBeNaN(); // 2 h < 3 h
    expect(at(3 * H, 10.75)).toBe(6); // 0.75 mm in 3 h = 6 mm/d
    expect(at(6 * H, 11.5)).toBe(6); // 1.5 mm in 6 h
    expect(at(7 * H, 12.5)).toBeCloseTo(((12.5 - 10.5) / 5) * 24, 12); // the reading at 0 left: 2 mm over 5 h
  });

  it('tangent angle: 45° at the calibrated creep rate, steeper as the slope accelerates', () => {
    const signal = { kind: 'tangent_angle', windowMs: 6 * H, velocity: 0.8 } as const;
    const angle = (mmPerDay: number) =>
      windowSignal(
        signal,
        filled(signal.windowMs, [
          [0, 100],
          [5 * H, 100 + (mmPerDay * 5) / 24],
        ]),
      );
    expect(angle(0.8)).toBeCloseTo(45, 10);
    expect(angle(0.8 * Math.tan((80 * Math.PI) / 180))).toBeCloseTo(80, 10);
    expect(angle(0.8 * Math.tan((85 * Math.PI) / 180))).toBeCloseTo(85, 10);
    expect(angle(0)).toBe(0);
    expect(angle(-0.8)).toBeCloseTo(-45, 10); // moving back (GNSS noise, heave)
  });

  it('judged at another time: the readings in (ts - W, ...]', () => {
    const w = filled(24 * H, [
      [0, 30],
      [10 * H, 40],
      [20 * H, 50],
    ]);
    expect(windowSignalAt({ kind: 'sum', windowMs: 24 * H }, w, 20 * H)).toBe(120);
    expect(windowSignalAt({ kind: 'sum', windowMs: 24 * H }, w, 30 * H)).toBe(90);
    expect(windowSignalAt({ kind: 'sum', windowMs: 24 * H }, w, 50 * H)).toBeNaN();
  });

  it('units', () => {
    expect(signalUnit({ kind: 'rate', perMs: D, windowMs: 6 * H }, 'mm')).toBe('mm/d');
    expect(signalUnit({ kind: 'rate', perMs: 6 * H, windowMs: 6 * H }, 'mm')).toBe('mm/6h');
    expect(signalUnit({ kind: 'tangent_angle', windowMs: H, velocity: 1 }, 'mm')).toBe('°');
    expect(signalUnit({ kind: 'sum', windowMs: H }, 'mm')).toBe('mm');
  });
});
