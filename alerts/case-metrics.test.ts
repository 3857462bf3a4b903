import { describe, expect, it } from 'vitest';
import { MetricsRegistry } from '../lib/metrics.js';
import type { CaseStatus } from './case-machine.js';
import { CaseMetrics } from './case-metrics.js';
import type { AlertRecord } from './store.js';

describe('case metrics', () => {
  it('observes the stage times from the start as a histogram, and counts open cases by status when scraped', async () => {
    const metrics = new MetricsRegistry();
    let counts = new Map<CaseStatus, number>([
      ['new', 2],
      ['dispatched', 1],
    ]);
    const cases = new CaseMetrics(metrics, { openCaseCounts: () => counts, getAlert: (id) => (id === 'a1' ? ({ startedAt: 1_000_000 } as AlertRecord) : undefined) });
    const alert = { startedAt: 1_000_000, level: 'red' as const };
    cases.stepRecorded(alert, 'acknowledged', 1_045_000);
    cases.stepRecorded(alert, 'delivered', 1_050_000);
    cases.stepRecorded(alert, 'feedback', 1_060_000);
    cases.stepRecorded(alert, 'closed', 1_000_000 + 7_200_000);
    cases.stepRecorded({ startedAt: 0, level: 'blue' }, 'acknowledged', 90_000);
    // Through alert_events: the start is read from the store; other events and unknown alerts are left out.
    cases.alertEvent({ alertId: 'a1', event: 'verified', level: 'orange', ts: 1_000_000 + 600_000 });
    cases.alertEvent({ alertId: 'a1', event: 'escalated', level: 'orange', ts: 1_000_000 + 600_000 });
    cases.alertEvent({ alertId: 'nope', event: 'verified', level: 'orange', ts: 1_000_000 + 600_000 });
    const text = await metrics.render();
    expect(text).toContain('# TYPE watchpost_case_stage_seconds histogram');
    const lines = text.split('\n');
    expect(lines.filter((l) => l.startsWith('watchpost_case_stage_seconds_') && l.includes('stage="ack"') && l.includes('level="red"') && /le="(30|60|\+Inf)"|_sum|_count/.test(l))).toEqual([
      'watchpost_case_stage_seconds_bucket{le="30",stage="ack",level="red"} 0',
      'watchpost_case_stage_seconds_bucket{le="60",stage="ack",level="red"} 1',
      'watchpost_case_stage_seconds_bucket{le="+Inf",stage="ack",level="red"} 1',
      'watchpost_case_stage_seconds_sum{stage="ack",level="red"} 45',
      'watchpost_case_stage_seconds_count{stage="ack",level="red"} 1',
    ]);
    expect(lines).toContain('watchpost_case_stage_seconds_count{stage="close",level="red"} 1');
    expect(lines).toContain('watchpost_case_stage_seconds_sum{stage="close",level="red"} 7200');
    expect(lines).toContain('watchpost_case_stage_seconds_sum{stage="ack",level="blue"} 90');
    expect(lines).toContain('watchpost_case_stage_seconds_sum{stage="verify",level="orange"} 600');
    expect(lines).toContain('watchpost_case_stage_seconds_count{stage="verify",level="orange"} 1');
    expect(lines.filter((l) => l.includes('stage="feedback"') || l.includes('escalated'))).toEqual([]);
    expect(lines.filter((l) => l.startsWith('watchpost_cases_open{'))).toEqual([
      'watchpost_cases_open{status="new"} 2',
      'watchpost_cases_open{status="acknowledged"} 0',
      'watchpost_cases_open{status="verified"} 0',
      'watchpost_cases_open{status="dispatched"} 1',
      'watchpost_cases_open{status="on_site"} 0',
    ]);
    counts = new Map([['on_site', 3]]);
    expect((await metrics.render()).split('\n').filter((l) => l.startsWith('watchpost_cases_open{') && !l.endsWith(' 0'))).toEqual(['watchpost_cases_open{status="on_site"} 3']);
  });
});
