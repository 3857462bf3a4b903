import { describe, expect, it } from 'vitest';
import { MetricsRegistry } from './metrics.js';

describe('MetricsRegistry', () => {
  it('renders counters and gauges by label set, in the Prometheus text format', async () => {
    const metrics = new MetricsRegistry();
    const c = metrics.counter('t_total', 'Things done, by outcome.');
    c.inc({ outcome: 'ok' });
    c.inc({ outcome: 'ok' }, 2);
    c.inc({ outcome: 'failed' });
    metrics.gauge('t_open', 'Open things.').set(4);
    expect(await metrics.render()).toBe(
      '# HELP t_total Things done, by outcome.\n# TYPE t_total counter\nt_total{outcome="ok"} 3\nt_total{outcome="failed"} 1\n\n' +
        '# HELP t_open Open things.\n# TYPE t_open gauge\nt_open 4\n',
    );
    expect(c.get({ outcome: 'ok' })).toBe(3);
    expect(c.get({ outcome: 'other' })).toBe(0);
    // The same name gives the same metric (how tests read values).
    expect(metrics.counter('t_total', '').get({ outcome: 'failed' })).toBe(1);
    expect(() => metrics.gauge('t_total', '')).toThrow(/already registered/);
  });

  it('computes collected gauges when scraped', async () => {
    const metrics = new MetricsRegistry();
    let open = [1, 2];
    metrics.gauge('t_level', 'By level.').collect(() => open.map((n, i) => [{ level: `l${i}` }, n]));
    expect(await metrics.render()).toContain('t_level{level="l0"} 1\nt_level{level="l1"} 2\n');
    open = [5];
    const text = await metrics.render();
    expect(text).toContain('t_level{level="l0"} 5\n');
    expect(text).not.toContain('l1');
  });

  it('escapes help texts and label values', async () => {
    const metrics = new MetricsRegistry();
    metrics.counter('t_total', 'a \\ backslash\nand a newline').inc({ reason: 'say "hi"\\\n' });
    const text = await metrics.render();
    expect(text).toContain('# HELP t_total a \\\\ backslash\\nand a newline\n');
    expect(text).toContain('t_total{reason="say \\"hi\\"\\\\\\n"} 1\n');
  });

  it('takes new label names as they appear, and renders histograms with buckets, sum and count', async () => {
    const metrics = new MetricsRegistry();
    const c = metrics.counter('t_total', 'x');
    c.inc({ a: '1' });
    await metrics.render();
    c.inc({ b: '2', a: '1' });
    expect(await metrics.render()).toContain('t_total{a="1"} 1\nt_total{a="1",b="2"} 1\n');
    const h = metrics.histogram('t_seconds', 'Durations.', [0.1, 1]);
    h.observe(0.05);
    h.observe(0.5);
    h.observe(3);
    expect(await metrics.render()).toContain(
      '# TYPE t_seconds histogram\nt_seconds_bucket{le="0.1"} 1\nt_seconds_bucket{le="1"} 2\nt_seconds_bucket{le="+Inf"} 3\nt_seconds_sum 3.55\nt_seconds_count 3\n',
    );
  });

  it('adds the default process metrics on request', async () => {
    const metrics = new MetricsRegistry();
    expect(await metrics.render()).not.toContain('process_cpu_seconds_total');
    metrics.collectDefaultMetrics();
    metrics.collectDefaultMetrics();
    const text = await metrics.render();
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) expect(text).toContain(`\n${name} `);
    // Not those that list every file descriptor, handle or resource when scraped (their cost grows with the connections).
    for (const name of ['process_open_fds', 'nodejs_active_handles', 'nodejs_active_handles_total', 'nodejs_active_resources', 'nodejs_active_resources_total'])
      expect(text).not.toContain(`# TYPE ${name} `);
  });
});
