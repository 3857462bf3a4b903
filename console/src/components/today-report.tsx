/** Today's measures of the disposal loop (GET /api/v1/report over the local day): cases, median ack and close times, overdue work orders, false-alarm rate. */
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { t } from '../i18n';
import { changed } from '../live';
import { useStore } from '../store';
import type { CaseReport } from '../types';

/** Seconds as the report prints them: 42.5s, 3m 07s, 2h 05m, 1d 03h; — without a figure. */
export function formatSeconds(s: number | null): string {
  if (s === null) return '—';
  if (s < 60) return `${Math.round(s * 10) / 10}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${String(m - h * 60).padStart(2, '0')}m`;
  const d = Math.floor(h / 24);
  return `${d}d ${String(h - d * 24).padStart(2, '0')}h`;
}

function today(): { from: number; to: number } {
  const start = new Date();
  start.setHours(0, 0, 0, 0);
  const end = new Date(start);
  end.setDate(end.getDate() + 1);
  return { from: start.getTime(), to: end.getTime() };
}

export function TodayReport() {
  const [report, setReport] = useState<CaseReport | null>(null);
  const [range, setRange] = useState(today);
  const lastChange = useStore(changed);
  useEffect(() => {
    const next = today();
    setRange(next);
    // The panel is secondary: without an answer it stays away rather than hiding the work orders.
    api<CaseReport>('GET', `/api/v1/report?from=${next.from}&to=${next.to}`).then(setReport, () => setReport(null));
  }, [lastChange]);
  if (!report) return null;
  const { total } = report;
  const figures: Array<[string, string, string, number | null]> = [
    ['cases', t('report.cases'), String(total.cases), total.cases],
    ['ack', t('report.median_ack'), formatSeconds(total.stages.ack.median_s), total.stages.ack.median_s],
    ['close', t('report.median_close'), formatSeconds(total.stages.close.median_s), total.stages.close.median_s],
    ['overdue', t('report.overdue'), String(total.overdue), total.overdue],
    ['false-alarm', t('report.false_alarm_rate'), total.false_alarm_rate === null ? '—' : `${(total.false_alarm_rate * 100).toFixed(1)}%`, total.false_alarm_rate],
  ];
  return (
    <div class="card today-report" data-testid="today-report" data-from={range.from} data-to={range.to}>
      <h3>{t('report.today')}</h3>
      <dl class="figures">
        {figures.map(([id, label, text, value]) => (
          <div>
            <dt>{label}</dt>
            <dd data-testid={`report-${id}`} data-value={value === null ? '' : String(value)}>
              {text}
            </dd>
          </div>
        ))}
      </dl>
    </div>
  );
}
