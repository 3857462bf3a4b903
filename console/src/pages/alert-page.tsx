/** One alert: what it is, its plan, the sensor's recent readings with the rule's thresholds, its timeline, and the actions the role allows. */
import { useEffect, useState } from 'preact/hooks';
import { api, canAct, session } from '../api';
import { ActionPanel } from '../components/action-panel';
import { ErrorMessage } from '../components/error-message';
import { LevelBadge } from '../components/level-badge';
import { Link } from '../components/link';
import { PlanList } from '../components/plan-list';
import { SeriesChart, type ThresholdLine } from '../components/series-chart';
import { Timeline } from '../components/timeline';
import { formatNumber, formatTime, t } from '../i18n';
import { changed } from '../live';
import { useStore } from '../store';
import { LEVELS, type AlertDetail, type RuleConfig, type SeriesAnswer, type WorkOrder } from '../types';

const HOUR = 3_600_000;

export function thresholdsOf(rule: RuleConfig | undefined): ThresholdLine[] {
  if (!rule?.levels || (rule.signal && rule.signal.kind !== 'value')) return [];
  return LEVELS.flatMap((level) => {
    const l = rule.levels?.[level];
    if (!l) return [];
    if (l.above !== undefined) return [{ level, value: l.above }];
    if (l.below !== undefined) return [{ level, value: l.below }];
    if (l.outside)
      return [
        { level, value: l.outside[0] },
        { level, value: l.outside[1] },
      ];
    return [];
  });
}

export function AlertPage(props: { id: string }) {
  const [alert, setAlert] = useState<AlertDetail | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [series, setSeries] = useState<SeriesAnswer | null>(null);
  const [seriesError, setSeriesError] = useState<unknown>(null);
  const [thresholds, setThresholds] = useState<ThresholdLine[]>([]);
  const [departments, setDepartments] = useState<string[]>([]);
  const current = useStore(session);
  const lastChange = useStore(changed);

  const load = () =>
    api<AlertDetail>('GET', `/api/v1/alerts/${encodeURIComponent(props.id)}`).then(
      (a) => {
        setAlert(a);
        setError(null);
      },
      (err: unknown) => setError(err),
    );
  useEffect(() => {
    void load();
  }, [props.id]);
  useEffect(() => {
    if (lastChange.id === props.id) void load();
  }, [lastChange]);
  useEffect(() => {
    if (!alert) return;
    const to = Date.now();
    const from = Math.min(Date.parse(alert.started_at) - HOUR, to - 6 * HOUR);
    const q = new URLSearchParams({ asset_id: alert.asset_id, sensor_id: alert.sensor_id, metric: alert.metric, from: String(from), to: String(to) });
    api<SeriesAnswer>('GET', `/api/v1/series?${q.toString()}`).then(setSeries, setSeriesError);
    api<{ rules: RuleConfig[] }>('GET', '/api/v1/rules').then(
      (r) => setThresholds(thresholdsOf(r.rules.find((x) => x.id === alert.rule_id))),
      () => setThresholds([]),
    );
    api<{ work_orders: WorkOrder[] }>('GET', '/api/v1/work-orders').then(
      (w) => setDepartments([...new Set(w.work_orders.map((o) => o.department))]),
      () => setDepartments([]),
    );
  }, [alert?.id, alert?.rule_id]);

  if (error) {
    return (
      <section>
        <Link href="/console">← {t('nav.board')}</Link>
        <ErrorMessage error={error} />
      </section>
    );
  }
  if (!alert) return <section class="loading" />;
  const unit = alert.metric;
  return (
    <section class={`detail detail-${alert.level}`} data-testid="detail">
      <Link href="/console">← {t('nav.board')}</Link>
      <div class="page-head">
        <h2>
          <LevelBadge level={alert.level} /> {alert.asset_name} · {alert.rule_name}
        </h2>
        <span class="state-pill" data-testid="detail-state">
          {t(`state.${alert.state}`)} · {t(`case.${alert.case?.status ?? 'new'}`)}
        </span>
      </div>
      <p class="message">{alert.message}</p>
      <dl class="facts">
        <dt>{t('alert.asset')}</dt>
        <dd>
          {alert.asset_id} ({alert.asset_type})
        </dd>
        <dt>{t('alert.street')}</dt>
        <dd>{alert.street}</dd>
        <dt>{t('alert.sensor')}</dt>
        <dd>
          {alert.sensor_id} · {alert.metric}
        </dd>
        <dt>{t('alert.value')}</dt>
        <dd>
          {formatNumber(alert.value)} ({t('alert.threshold')} {Array.isArray(alert.threshold) ? alert.threshold.join('–') : (alert.threshold ?? '—')})
        </dd>
        <dt>{t('alert.started')}</dt>
        <dd>{formatTime(alert.started_at)}</dd>
        <dt>{t('alert.acknowledged_by')}</dt>
        <dd>{alert.acknowledged_by ?? '—'}</dd>
        {alert.case?.department ? (
          <>
            <dt>{t('alert.department')}</dt>
            <dd>{alert.case.department}</dd>
          </>
        ) : null}
      </dl>
      <div class="columns">
        <div>
          <h3>{t('detail.chart')}</h3>
          {series ? (
            series.points.length > 0 ? (
              <SeriesChart series={series} thresholds={thresholds} unit={unit} startedAt={Date.parse(alert.started_at)} />
            ) : (
              <p class="muted">{t('detail.no_readings')}</p>
            )
          ) : (
            <ErrorMessage error={seriesError} />
          )}
          {series?.bucket_ms ? <p class="muted small">{t('detail.bucketed', { seconds: Math.round(series.bucket_ms / 1000) })}</p> : null}
          <h3>{t('detail.plan')}</h3>
          <PlanList plan={alert.plan} />
        </div>
        <div>
          <h3>{t('detail.actions')}</h3>
          {canAct(current) ? (
            <ActionPanel alert={alert} departments={departments} onDone={() => void load()} />
          ) : (
            <p class="muted" data-testid="read-only">
              {t('detail.read_only')}
            </p>
          )}
          <h3>{t('detail.timeline')}</h3>
          <Timeline entries={alert.timeline} />
        </div>
      </div>
    </section>
  );
}
