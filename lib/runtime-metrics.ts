/**
 * How busy the main thread is, and how much memory the process holds, for /metrics; also turns
 * on prom-client's default process and Node.js metrics.
 *
 * Everything Watchpost does for a message (MQTT parsing, decoding, the spool, rules, alerts)
 * runs on the one main thread. When that thread is busy all the time, every message waits for
 * the ones before it, and an alarm's latency grows with the queue: the event loop's utilization
 * and delay say so before the alert latency does. The utilization covers the last completed
 * window (`windowMs`, default 10 s), so a scrape at any interval reads the same value; the delay
 * is a histogram of how late a timer due every `resolutionMs` ran, which Prometheus aggregates
 * over any range (histogram_quantile over rate(..._bucket)).
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { Histogram, MetricsRegistry } from './metrics.js';

export interface RuntimeMetricsOptions {
  /** Length of the window the utilization covers (ms). */
  windowMs: number;
  /** How often the event-loop delay is sampled (ms). */
  resolutionMs: number;
}

export const DEFAULT_RUNTIME_METRICS_OPTIONS: RuntimeMetricsOptions = { windowMs: 10_000, resolutionMs: 10 };

/** Bucket bounds (seconds) of the event-loop delay: 1 ms (noise) to 10 s (a stalled process). */
export const EVENT_LOOP_DELAY_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class RuntimeMetrics {
  private readonly options: RuntimeMetricsOptions;
  private delay?: Histogram;
  private windowTimer?: NodeJS.Timeout;
  private sampleTimer?: NodeJS.Timeout;
  private elu?: EventLoopUtilization;
  private utilization?: number;

  constructor(
    private readonly metrics: MetricsRegistry,
    options: Partial<RuntimeMetricsOptions> = {},
  ) {
    this.options = { ...DEFAULT_RUNTIME_METRICS_OPTIONS, ...options };
  }

  start(): void {
    if (this.windowTimer) return;
    this.metrics.collectDefaultMetrics();
    this.elu = performance.eventLoopUtilization();
    this.windowTimer = setInterval(() => this.closeWindow(), this.options.windowMs);
    this.windowTimer.unref();

    this.metrics
      .gauge('watchpost_event_loop_utilization', 'Share of the last window (10 s) the main thread was busy (0-1); near 1, messages queue and alert latency grows.')
      .collect(() => (this.utilization === undefined ? [] : [[undefined, round(this.utilization, 4)]]));
    this.delay = this.metrics.histogram(
      'watchpost_event_loop_delay_seconds',
      `How late the main thread ran a timer due every ${this.options.resolutionMs} ms: the time a ready message waits before it is handled.`,
      EVENT_LOOP_DELAY_BUCKETS,
    );
    this.metrics.gauge('watchpost_process_resident_memory_bytes', 'Resident memory of the process (RSS).').collect(() => [[undefined, process.memoryUsage.rss()]]);
    this.metrics.gauge('watchpost_heap_used_bytes', 'V8 heap in use (live objects and garbage not yet collected).').collect(() => [[undefined, process.memoryUsage().heapUsed]]);
    this.sample(performance.now());
  }

  stop(): void {
    if (this.windowTimer) clearInterval(this.windowTimer);
    if (this.sampleTimer) clearTimeout(this.sampleTimer);
    this.windowTimer = undefined;
    this.sampleTimer = undefined;
  }

  /** Schedules the next sample; when it runs, how late it ran is one observation. */
  private sample(scheduledAt: number): void {
    const due = scheduledAt + this.options.resolutionMs;
    this.sampleTimer = setTimeout(() => {
      const now = performance.now();
      this.delay!.observe(Math.max(0, now - due) / 1000);
      this.sample(now);
    }, this.options.resolutionMs);
    this.sampleTimer.unref();
  }

  private closeWindow(): void {
    const since = performance.eventLoopUtilization(this.elu);
    this.elu = performance.eventLoopUtilization();
    this.utilization = since.utilization;
  }
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
