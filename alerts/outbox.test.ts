/**
 * The outbox with fake timers: per-channel rate limits and digests, per-recipient limits, the
 * maximum retry age, Retry-After and provider throttling, and digests across a restart.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MIN, ruleEvent, startHarness, type Harness } from '../test/support/alerts.js';
import type { EscalationConfig } from './config.js';
import { parseEventBody } from './event-body.js';
import { RateLimiter } from './rate-limit.js';

const T0 = Date.UTC(2025, 10, 28, 2, 0, 0);
const S = 1000;

describe('rate limiter', () => {
  it('counts sends per key in every window and says when a slot frees', () => {
    const limiter = new RateLimiter([
      { max: 2, per: S },
      { max: 3, per: MIN },
    ]);
    expect(limiter.room('a', 0)).toBe(2);
    limiter.record('a', 0);
    limiter.record('a', 100);
    expect(limiter.room('a', 500)).toBe(0);
    expect(limiter.room('b', 500)).toBe(2);
    expect(limiter.nextFree('a', 500)).toBe(S);
    expect(limiter.room('a', S)).toBe(1);
    limiter.record('a', S);
    // The minute window is full now: 0, 100, 1000.
    expect(limiter.room('a', 5 * S)).toBe(0);
    expect(limiter.nextFree('a', 5 * S)).toBe(MIN);
    expect(limiter.room('a', MIN)).toBe(1);
    limiter.block('a', 2 * MIN);
    expect(limiter.room('a', MIN + 1)).toBe(0);
    expect(limiter.nextFree('a', MIN + 1)).toBe(2 * MIN);
    expect(new RateLimiter([]).room('x', 0)).toBe(Infinity);
  });
});

describe('outbox with fake timers', () => {
  let h: Harness;
  const groupOnly: EscalationConfig = { id: 'bridge-duty', tiers: [{ after: 0, notify: [{ channel: 'duty-group', to: [] }] }] };
  const smsOnly: EscalationConfig = { id: 'bridge-duty', tiers: [{ after: 0, notify: [{ channel: 'sms', to: ['longcheng-duty'] }] }] };

  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });

  afterEach(async () => {
    await h.close();
    vi.useRealTimers();
  });

  const sensor = (i: number) => ruleEvent('red', 300 + i, { sensorId: `strain-0${i}` });

  it('sends within the rate limit alone and merges the excess into one digest, never dropping one', async () => {
    h = startHarness({ escalations: [groupOnly], channels: [{ id: 'duty-group', type: 'wecom', rateLimits: [{ max: 3, per: MIN }] }], retry: { jitter: 0 } });
    void h.service.handle([1, 2, 3, 4, 5, 6].map(sensor));
    await vi.advanceTimersByTimeAsync(0);
    // Room for 3: two alone, the other four in one digest (the third slot).
    expect(h.take()).toEqual([
      ['firing', 0, 'duty-group', []],
      ['firing', 0, 'duty-group', []],
      ['digest:firing,firing,firing,firing', 0, 'duty-group', []],
    ]);
    void h.service.handle([7, 8].map(sensor));
    await vi.advanceTimersByTimeAsync(MIN - 1);
    expect(h.take()).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    // The window emptied: both fit alone.
    expect(h.take()).toEqual([
      ['firing', 0, 'duty-group', []],
      ['firing', 0, 'duty-group', []],
    ]);
    const alerts = h.service.list();
    expect(alerts.length).toBe(8);
    expect(await h.metrics.render()).toContain('watchpost_digests_total{channel="duty-group"} 1');
    expect(await h.metrics.render()).toContain('watchpost_deliveries_total{channel="duty-group",outcome="delivered"} 8');
    // A merged notification's timeline: queued, digested, delivered with the digest's id.
    const merged = alerts.find((a) => a.sensor_id === 'strain-06')!;
    const deliveries = h.service.get(merged.id).timeline.filter((e) => e.kind === 'delivery');
    expect(deliveries.map((e) => [e.type, e.delivery_id === deliveries[0]!.delivery_id])).toEqual([
      ['queued', true],
      ['digested', true],
      ['delivered', true],
    ]);
    expect(deliveries[1]).toMatchObject({ size: 4, event: 'firing' });
    expect(deliveries[2]!.digest_id).toBe(deliveries[1]!.digest_id);
  });

  it('gives the digest every merged notification, oldest first', async () => {
    h = startHarness({ escalations: [groupOnly], channels: [{ id: 'duty-group', type: 'wecom', rateLimits: [{ max: 1, per: MIN }] }] });
    void h.service.handle([sensor(1)]);
    await vi.advanceTimersByTimeAsync(0);
    h.sent.splice(0);
    void h.service.handle([2, 3, 4].map(sensor));
    await vi.advanceTimersByTimeAsync(MIN);
    expect(h.sent.length).toBe(1);
    const digest = h.sent[0]!;
    expect(digest.digest!.map((d) => parseEventBody(d.body).alert.sensor_id)).toEqual(['strain-02', 'strain-03', 'strain-04']);
    expect(digest.deliveryId).not.toBe(digest.digest![0]!.deliveryId);
    expect(new Set(digest.digest!.map((d) => d.deliveryId)).size).toBe(3);
  });

  it('limits person channels per recipient', async () => {
    h = startHarness({ escalations: [smsOnly], channels: [{ id: 'sms', type: 'sms', addressing: 'person', rateLimits: [{ max: 1, per: MIN }] }] });
    void h.service.handle([sensor(1)]);
    await vi.advanceTimersByTimeAsync(0);
    expect(h.take()).toEqual([['firing', 0, 'sms', ['longcheng-duty']]]);
    void h.service.handle([sensor(2)]);
    await vi.advanceTimersByTimeAsync(30 * S);
    void h.service.handle([sensor(3)]);
    await vi.advanceTimersByTimeAsync(30 * S - 1);
    expect(h.take()).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.take()).toEqual([['digest:firing,firing', 0, 'sms', ['longcheng-duty']]]);
  });

  it('retries until max_age, then fails for good and raises delivery_failed', async () => {
    h = startHarness({ escalations: [groupOnly], channels: [{ id: 'duty-group', type: 'wecom', maxAgeMs: 10 * MIN }], retry: { baseDelayMs: S, maxDelayMs: 5 * MIN, jitter: 0 } });
    const channel = h.channels.get('duty-group')!;
    for (let i = 0; i < 50; i++) channel.answers.push({ outcome: 'retry', error: 'HTTP 503: busy', statusCode: 503 });
    void h.service.handle([sensor(1)]);
    await vi.advanceTimersByTimeAsync(20 * MIN);
    const id = h.service.list().find((a) => a.rule_id === 'bridge-strain')!.id;
    const outcomes = h.service.get(id).timeline.filter((e) => e.kind === 'delivery' && e.type !== 'queued');
    // Attempts at 0, 1, 3, 7, 15, 31, 63, 127, 255 and 511 s, then the last one at the 600 s deadline.
    expect(outcomes.map((e) => Math.round((Date.parse(e.at) - T0) / S))).toEqual([0, 1, 3, 7, 15, 31, 63, 127, 255, 511, 600]);
    expect(outcomes.at(-1)).toMatchObject({ type: 'delivery_failed', attempt: 11, error: 'HTTP 503: busy (gave up after 11 attempts in 600 s (max_age))' });
    expect(h.service.list().some((a) => a.rule_id === 'delivery_failed')).toBe(true);
  });

  it('honours Retry-After and pauses a throttled channel for every notification', async () => {
    h = startHarness({ escalations: [groupOnly], channels: [{ id: 'duty-group', type: 'dingtalk', rateLimits: [{ max: 20, per: MIN }] }], retry: { jitter: 0 } });
    h.channels.get('duty-group')!.answers.push({ outcome: 'retry', error: 'error 130101: send too fast', retryAfterMs: MIN, throttled: true });
    void h.service.handle([sensor(1)]);
    await vi.advanceTimersByTimeAsync(0);
    expect(h.take().length).toBe(1);
    void h.service.handle([sensor(2)]);
    await vi.advanceTimersByTimeAsync(MIN - 1);
    expect(h.take()).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.take()).toEqual([
      ['firing', 0, 'duty-group', []],
      ['firing', 0, 'duty-group', []],
    ]);
  });

  it('a digest formed before a restart is sent after it under its own delivery_id, its members never alone', async () => {
    h = startHarness({ escalations: [groupOnly], channels: [{ id: 'duty-group', type: 'wecom', rateLimits: [{ max: 1, per: MIN }] }], retry: { baseDelayMs: 5 * S, jitter: 0 } });
    void h.service.handle([sensor(1)]);
    await vi.advanceTimersByTimeAsync(0);
    h.take();
    h.channels.get('duty-group')!.answers.push({ outcome: 'retry', error: 'HTTP 502', statusCode: 502 });
    void h.service.handle([2, 3].map(sensor));
    await vi.advanceTimersByTimeAsync(MIN);
    const first = h.sent.splice(0);
    expect(first.map((n) => n.digest?.length)).toEqual([2]);
    await h.restart();
    await vi.advanceTimersByTimeAsync(2 * MIN);
    const after = h.sent.splice(0);
    expect(after.map((n) => [n.deliveryId, n.digest?.map((d) => d.deliveryId)])).toEqual([[first[0]!.deliveryId, first[0]!.digest!.map((d) => d.deliveryId)]]);
    await vi.advanceTimersByTimeAsync(10 * MIN);
    expect(h.sent.length).toBe(0);
  });
});
