/**
 * The disposal loop's Prometheus measures (contract: "Departments, on-call schedules and the
 * disposal loop"):
 * - `watchpost_case_stage_seconds{stage, level}`: a histogram of each stage's time, from the
 *   alert's start to the step (report.ts: ack, verify, dispatch, on_site, close), observed when
 *   the step's event is written to `alert_events` (after it is committed); `level` is the
 *   alert's level then.
 * - `watchpost_cases_open{status}`: open cases (neither closed nor dismissed) by status, read
 *   from the store when scraped; every open status is listed, 0 included.
 */
import type { Level } from '../lib/levels.js';
import type { Histogram, MetricsRegistry } from '../lib/metrics.js';
import { CASE_STATUSES, FINAL_CASE_STATUSES } from './case-machine.js';
import { stageOf } from './report.js';
import type { AlertEventPoint } from '../ingest/storage.js';
import type { AlertRepository, ReportRepository, TimelineEntryType } from './store.js';

export const CASE_STAGE_METRIC = 'watchpost_case_stage_seconds';
export const CASES_OPEN_METRIC = 'watchpost_cases_open';

/** 30 s to a week: a red alarm is answered in minutes, a blue work order may take days. */
export const CASE_STAGE_BUCKETS: readonly number[] = [30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14_400, 28_800, 86_400, 259_200, 604_800];

const OPEN_STATUSES = CASE_STATUSES.filter((s) => !FINAL_CASE_STATUSES.includes(s));

export class CaseMetrics {
  private readonly stages: Histogram;

  constructor(
    metrics: MetricsRegistry,
    private readonly store: Pick<ReportRepository, 'openCaseCounts'> & Pick<AlertRepository, 'getAlert'>,
  ) {
    this.stages = metrics.histogram(CASE_STAGE_METRIC, "Time from an alert's start to each step of its case (stage: ack, verify, dispatch, on_site, close).", CASE_STAGE_BUCKETS, [
      'stage',
      'level',
    ]);
    metrics.gauge(CASES_OPEN_METRIC, 'Open cases (neither closed nor dismissed) by status.').collect(() => {
      const counts = store.openCaseCounts();
      return OPEN_STATUSES.map((status) => [{ status }, counts.get(status) ?? 0]);
    });
  }

  /**
   * A timeline event was committed: observes its stage, if it completes one (acknowledged,
   * verified, dispatched, on_site, closed). Each happens at most once per case (case-machine.ts).
   */
  /** An alert event written to `alert_events`: observed if it is a step (its alert's start read from the store). */
  alertEvent(point: Pick<AlertEventPoint, 'alertId' | 'event' | 'level' | 'ts'>): void {
    if (!stageOf(point.event as TimelineEntryType)) return;
    const alert = this.store.getAlert(point.alertId);
    if (alert) this.stepRecorded({ startedAt: alert.startedAt, level: point.level as Level }, point.event as TimelineEntryType, point.ts);
  }

  stepRecorded(alert: { startedAt: number; level: Level }, type: TimelineEntryType, at: number): void {
    const stage = stageOf(type);
    if (stage) this.stages.observe(Math.max(0, at - alert.startedAt) / 1000, { stage, level: alert.level });
  }
}
