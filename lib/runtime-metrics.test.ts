import { afterEach, describe, expect, it } from 'vitest';
import { MetricsRegistry } from './metrics.js';
import { metricValue as value } from '../test/support/watchpost-process.js';
import { RuntimeMetrics } from './runtime-metrics.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

describe('RuntimeMetrics', () => {
  let runtime: RuntimeMetrics | undefined;
  afterEach(() => runtime?.stop());

  it('reports a busy main thread, and how late it ran timers, for the last window', async () => {
    const metrics = new MetricsRegistry();
    runtime = new RuntimeMetrics(metrics, { windowMs: 100, resolutionMs: 1 });
    runtime.start();
    // No window has closed yet: nothing to report rather than a made-up zero.
    expect(value(await metrics.render(), 'watchpost_event_loop_utilization')).toBeUndefined();

    await sleep(20); // the delay sampler has taken its first sample (it measures from there)
    spin(250); // blocks the loop: the window's timer and the delay sampler run late
    await sleep(30); // the window closes on its (late) timer
    const busy = await metrics.render();
    expect(value(busy, 'watchpost_event_loop_utilization')).toBeGreaterThan(0.5);
    // The sample due during the spin ran at least 200 ms late: over the 0.1 s bucket.
    const late = (text: string) => value(text, 'watchpost_event_loop_delay_seconds_count')! - value(text, 'watchpost_event_loop_delay_seconds_bucket{le="0.1"}')!;
    expect(late(busy)).toBe(1);
    expect(value(busy, 'watchpost_event_loop_delay_seconds_sum')).toBeGreaterThanOrEqual(0.2);

    await sleep(250); // at least one whole window of waiting
    const idle = await metrics.render();
    expect(value(idle, 'watchpost_event_loop_utilization')).toBeLessThan(0.5);
    // Samples went on while idle, none of them late.
    expect(value(idle, 'watchpost_event_loop_delay_seconds_count')).toBeGreaterThan(value(busy, 'watchpost_event_loop_delay_seconds_count')! + 10);
    expect(late(idle)).toBe(1);
  });

  it('reports resident memory and heap in use, and the default process metrics', async () => {
    const metrics = new MetricsRegistry();
    runtime = new RuntimeMetrics(metrics);
    runtime.start();
    const text = await metrics.render();
    const rss = value(text, 'watchpost_process_resident_memory_bytes')!;
    const heap = value(text, 'watchpost_heap_used_bytes')!;
    expect(rss).toBeGreaterThan(heap);
    expect(heap).toBeGreaterThan(1024 * 1024);
    expect(value(text, 'process_resident_memory_bytes')).toBeGreaterThan(heap);
  });
});
