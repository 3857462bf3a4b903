/**
 * Signals on event time: the moving window of one series and what rules compute from it.
 *
 * - `value`: the reading itself (no window).
 * - `{ avg|min|max|sum: W }`: the aggregate of the readings with ts in (t - W, t], where t is the
 *   ts of the series' latest reading. Defined from the first reading on.
 * - `{ rate: P, window: W }`: (last - first) / (t_last - t_first) * P over the readings in the
 *   window: the change per P. Defined once the readings span at least half the window, so two
 *   noisy readings a minute apart are never extrapolated to a daily rate.
 * - `{ tangent_angle: W, velocity: v }` (improved tangent-angle method for landslides):
 *   T = S / v turns the displacement S into time units (days) of constant-rate creep, and
 *   α = arctan(ΔT / Δt) with Δt in days, in degrees. Since ΔT/Δt = (ΔS/Δt) / v, α is the arctangent
 *   of the displacement rate per day over the window divided by v: 45° is uniform creep, larger
 *   angles mean acceleration. Defined like `rate`.
 *
 * Bounded memory: a window stores at most MAX_SLOTS + 2 slots. A slot holds the readings whose ts
 * lie within `W / MAX_SLOTS` of the slot's first reading (count, sum, min, max, first, last), so
 * readings closer together than W/512 are merged, and a slot leaves the window once its newest
 * reading is out of it. Windows are therefore exact for ordinary sampling rates (a 6 h window
 * keeps every reading down to one per 42 s, a 24 h window one per 169 s), and at higher rates
 * the window's old edge is exact to W/512; whatever the rate, a window holds at most 515 slots of
 * 9 doubles (37 KB).
 *
 * The running sum is compensated (Neumaier), so a sum of readings such as 0.1 mm rain tips meets
 * a threshold of exactly 100 mm when the readings add up to it.
 */
import { formatDuration } from '../lib/duration.js';
import type { SignalConfig } from './config.js';

/** The longest window a signal may use. */
export const MAX_WINDOW_MS = 31 * 86_400_000;
/** Slots per window; the merge granularity is windowMs / MAX_SLOTS. */
export const MAX_SLOTS = 512;
const DAY_MS = 86_400_000;

const F = 9;
const TS_FIRST = 0;
const TS_LAST = 1;
const FIRST = 2;
const LAST = 3;
const SUM = 4;
const COUNT = 5;
const MIN = 6;
const MAX = 7;
/** The compensation of SUM (Neumaier), so merged slots add up exactly too. */
const SUM_LO = 8;

/** Aggregates of the part of a window that lies after a cutoff (see SampleWindow.view). */
export interface WindowView {
  count: number;
  sum: number;
  min: number;
  max: number;
  firstTs: number;
  first: number;
  lastTs: number;
  last: number;
}

/** A window's contents (SampleWindow.snapshot): `slots` holds 9 doubles per slot, oldest first. */
export interface WindowSnapshot {
  windowMs: number;
  samples: number;
  sumHi: number;
  sumLo: number;
  evictions: number;
  min: number;
  max: number;
  slots: Float64Array;
}

export class SampleWindow {
  readonly slotMs: number;
  /** Most slots the window can hold (see the module comment): the buffer never grows past it. */
  private readonly limit: number;
  private buf: Float64Array;
  private cap = 4;
  private head = 0;
  private size = 0;
  private samples = 0;
  private sumHi = 0;
  private sumLo = 0;
  private evictions = 0;
  private minV = Infinity;
  private maxV = -Infinity;
  private extremaStale = false;

  constructor(readonly windowMs: number) {
    this.slotMs = Math.max(1, Math.floor(windowMs / MAX_SLOTS));
    this.limit = Math.ceil(windowMs / this.slotMs) + 3;
    this.buf = new Float64Array(this.cap * F);
  }

  /** Adds a reading; ts must not be older than the last one added. */
  push(ts: number, value: number): void {
    const buf = this.buf;
    this.samples++;
    this.add(value);
    if (!this.extremaStale) {
      if (value < this.minV) this.minV = value;
      if (value > this.maxV) this.maxV = value;
    }
    if (this.size > 0) {
      const o = ((this.head + this.size - 1) % this.cap) * F;
      if (ts - buf[o + TS_FIRST]! < this.slotMs) {
        buf[o + TS_LAST] = ts;
        buf[o + LAST] = value;
        const t = buf[o + SUM]! + value;
        buf[o + SUM_LO] = buf[o + SUM_LO]! + (Math.abs(buf[o + SUM]!) >= Math.abs(value) ? buf[o + SUM]! - t + value : value - t + buf[o + SUM]!);
        buf[o + SUM] = t;
        buf[o + COUNT] = buf[o + COUNT]! + 1;
        if (value < buf[o + MIN]!) buf[o + MIN] = value;
        if (value > buf[o + MAX]!) buf[o + MAX] = value;
        return;
      }
    }
    if (this.size === this.cap) this.grow();
    const o = ((this.head + this.size) % this.cap) * F;
    const b = this.buf;
    b[o + TS_FIRST] = ts;
    b[o + TS_LAST] = ts;
    b[o + FIRST] = value;
    b[o + LAST] = value;
    b[o + SUM] = value;
    b[o + SUM_LO] = 0;
    b[o + COUNT] = 1;
    b[o + MIN] = value;
    b[o + MAX] = value;
    this.size++;
  }

  /** Drops the slots whose newest reading is at or before ts - windowMs. */
  prune(ts: number): void {
    const cutoff = ts - this.windowMs;
    const buf = this.buf;
    while (this.size > 0) {
      const o = this.head * F;
      if (buf[o + TS_LAST]! > cutoff) break;
      this.samples -= buf[o + COUNT]!;
      this.add(-buf[o + SUM]!);
      this.add(-buf[o + SUM_LO]!);
      if (buf[o + MIN]! <= this.minV || buf[o + MAX]! >= this.maxV) this.extremaStale = true;
      this.head = (this.head + 1) % this.cap;
      this.size--;
      this.evictions++;
    }
    if (this.size === 0) this.reset();
    else if (this.evictions >= this.size) this.recomputeSum();
  }

  /** Readings in the window. */
  get count(): number {
    return this.samples;
  }

  /** Slots in use (for memory figures). */
  get slots(): number {
    return this.size;
  }

  get sum(): number {
    return this.sumHi + this.sumLo;
  }

  get min(): number {
    if (this.extremaStale) this.recomputeExtrema();
    return this.minV;
  }

  get max(): number {
    if (this.extremaStale) this.recomputeExtrema();
    return this.maxV;
  }

  get firstTs(): number {
    return this.size === 0 ? NaN : this.buf[this.head * F + TS_FIRST]!;
  }

  get first(): number {
    return this.size === 0 ? NaN : this.buf[this.head * F + FIRST]!;
  }

  get lastTs(): number {
    return this.size === 0 ? NaN : this.buf[((this.head + this.size - 1) % this.cap) * F + TS_LAST]!;
  }

  get last(): number {
    return this.size === 0 ? NaN : this.buf[((this.head + this.size - 1) % this.cap) * F + LAST]!;
  }

  /**
   * Aggregates of the slots whose newest reading is after `cutoff`, without changing the window
   * (compound rules judge another sensor's window at the current reading's time).
   */
  view(cutoff: number, out: WindowView): WindowView {
    out.count = 0;
    out.sum = 0;
    out.min = Infinity;
    out.max = -Infinity;
    out.firstTs = NaN;
    out.first = NaN;
    out.lastTs = NaN;
    out.last = NaN;
    const buf = this.buf;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < this.size; i++) {
      const o = ((this.head + i) % this.cap) * F;
      if (buf[o + TS_LAST]! <= cutoff) continue;
      if (out.count === 0) {
        out.firstTs = buf[o + TS_FIRST]!;
        out.first = buf[o + FIRST]!;
      }
      out.count += buf[o + COUNT]!;
      [hi, lo] = neumaier(hi, lo, buf[o + SUM]!);
      [hi, lo] = neumaier(hi, lo, buf[o + SUM_LO]!);
      if (buf[o + MIN]! < out.min) out.min = buf[o + MIN]!;
      if (buf[o + MAX]! > out.max) out.max = buf[o + MAX]!;
      out.lastTs = buf[o + TS_LAST]!;
      out.last = buf[o + LAST]!;
    }
    out.sum = hi + lo;
    return out;
  }

  /**
   * The window as plain data, exact: `SampleWindow.restore` of it behaves exactly as this window
   * does (the running sum's compensation and eviction count included). Extrema are recomputed
   * first when stale, so equal windows give equal snapshots.
   */
  snapshot(): WindowSnapshot {
    const slots = new Float64Array(this.size * F);
    for (let i = 0; i < this.size; i++) {
      const o = ((this.head + i) % this.cap) * F;
      slots.set(this.buf.subarray(o, o + F), i * F);
    }
    return { windowMs: this.windowMs, samples: this.samples, sumHi: this.sumHi, sumLo: this.sumLo, evictions: this.evictions, min: this.min, max: this.max, slots };
  }

  /** The window a snapshot was taken of; throws when the snapshot cannot be one. */
  static restore(s: WindowSnapshot): SampleWindow {
    const w = new SampleWindow(s.windowMs);
    const size = s.slots.length / F;
    if (!Number.isInteger(size) || size > w.limit) throw new RangeError(`a window of ${s.windowMs} ms holds at most ${w.limit} slots of ${F} values`);
    w.cap = Math.max(4, size);
    w.buf = new Float64Array(w.cap * F);
    w.buf.set(s.slots);
    w.size = size;
    w.samples = s.samples;
    w.sumHi = s.sumHi;
    w.sumLo = s.sumLo;
    w.evictions = s.evictions;
    w.minV = s.min;
    w.maxV = s.max;
    return w;
  }

  private add(x: number): void {
    const s = this.sumHi;
    const t = s + x;
    this.sumLo += Math.abs(s) >= Math.abs(x) ? s - t + x : x - t + s;
    this.sumHi = t;
  }

  private reset(): void {
    this.head = 0;
    this.samples = 0;
    this.sumHi = 0;
    this.sumLo = 0;
    this.evictions = 0;
    this.minV = Infinity;
    this.maxV = -Infinity;
    this.extremaStale = false;
  }

  /** Exact sum again after many evictions (compensation keeps it close; this keeps it bounded). */
  private recomputeSum(): void {
    let hi = 0;
    let lo = 0;
    for (let i = 0; i < this.size; i++) {
      const o = ((this.head + i) % this.cap) * F;
      [hi, lo] = neumaier(hi, lo, this.buf[o + SUM]!);
      [hi, lo] = neumaier(hi, lo, this.buf[o + SUM_LO]!);
    }
    this.sumHi = hi;
    this.sumLo = lo;
    this.evictions = 0;
  }

  private recomputeExtrema(): void {
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < this.size; i++) {
      const o = ((this.head + i) % this.cap) * F;
      if (this.buf[o + MIN]! < min) min = this.buf[o + MIN]!;
      if (this.buf[o + MAX]! > max) max = this.buf[o + MAX]!;
    }
    this.minV = min;
    this.maxV = max;
    this.extremaStale = false;
  }

  private grow(): void {
    const cap = this.cap < this.limit ? Math.min(this.cap * 2, this.limit) : this.cap * 2;
    const next = new Float64Array(cap * F);
    for (let i = 0; i < this.size; i++) next.set(this.buf.subarray(((this.head + i) % this.cap) * F, ((this.head + i) % this.cap) * F + F), i * F);
    this.buf = next;
    this.cap = cap;
    this.head = 0;
  }
}

function neumaier(hi: number, lo: number, x: number): [number, number] {
  const t = hi + x;
  lo += Math.abs(hi) >= Math.abs(x) ? hi - t + x : x - t + hi;
  return [t, lo];
}

export type WindowedSignal = Exclude<SignalConfig, { kind: 'value' }>;

export function isWindowed(signal: SignalConfig): signal is WindowedSignal {
  return signal.kind !== 'value';
}

export function windowOf(signal: SignalConfig): number {
  return signal.kind === 'value' ? 0 : signal.windowMs;
}

function fromParts(signal: WindowedSignal, count: number, sum: number, min: number, max: number, firstTs: number, first: number, lastTs: number, last: number): number {
  if (count === 0) return NaN;
  switch (signal.kind) {
    case 'sum':
      return sum;
    case 'avg':
      return sum / count;
    case 'min':
      return min;
    case 'max':
      return max;
    case 'rate':
    case 'tangent_angle': {
      const span = lastTs - firstTs;
      if (!(span > 0) || span < signal.windowMs / 2) return NaN;
      if (signal.kind === 'rate') return ((last - first) / span) * signal.perMs;
      return (Math.atan((((last - first) / span) * DAY_MS) / signal.velocity) * 180) / Math.PI;
    }
  }
}

/** The signal of a window that has just been pruned to its latest reading; NaN = not defined yet. */
export function windowSignal(signal: WindowedSignal, w: SampleWindow): number {
  if (w.count === 0) return NaN;
  switch (signal.kind) {
    case 'sum':
      return w.sum;
    case 'avg':
      return w.sum / w.count;
    case 'min':
      return w.min;
    case 'max':
      return w.max;
    default:
      return fromParts(signal, w.count, 0, 0, 0, w.firstTs, w.first, w.lastTs, w.last);
  }
}

const scratch: WindowView = { count: 0, sum: 0, min: 0, max: 0, firstTs: 0, first: 0, lastTs: 0, last: 0 };

/** The signal of a window as of event time `ts` (readings in (ts - W, ...]), without pruning it. */
export function windowSignalAt(signal: WindowedSignal, w: SampleWindow, ts: number): number {
  const v = w.view(ts - signal.windowMs, scratch);
  return fromParts(signal, v.count, v.sum, v.min, v.max, v.firstTs, v.first, v.lastTs, v.last);
}

/** Derived signals are rounded to 6 significant digits for messages (evaluation uses the exact value). */
export function displaySignal(signal: SignalConfig, value: number): number {
  if (signal.kind === 'rate' || signal.kind === 'tangent_angle' || signal.kind === 'avg') return Number(value.toPrecision(6));
  return value;
}

/** The unit of a signal of a metric with unit `base`: rate per period, degrees for tangent angles. */
export function signalUnit(signal: SignalConfig, base: string): string {
  if (signal.kind === 'tangent_angle') return '°';
  if (signal.kind === 'rate') {
    const per = formatDuration(signal.perMs).replace(/^1(?=[a-z]+$)/, '');
    return `${base}/${per}`;
  }
  return base;
}

/** How a signal reads in the replay table and logs: `rate 1d over 6h`, `sum 24h`. */
export function describeSignal(signal: SignalConfig): string {
  switch (signal.kind) {
    case 'value':
      return 'value';
    case 'rate':
      return `rate per ${formatDuration(signal.perMs)} over ${formatDuration(signal.windowMs)}`;
    case 'tangent_angle':
      return `tangent angle over ${formatDuration(signal.windowMs)} (v = ${signal.velocity}/d)`;
    default:
      return `${signal.kind} ${formatDuration(signal.windowMs)}`;
  }
}
