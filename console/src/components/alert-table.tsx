/** The board's rows: one per alert, coloured by level; a click opens the alert. Rows re-render only when their alert changes. */
import { Component } from 'preact';
import { formatNumber, formatTime, language, t } from '../i18n';
import { fresh } from '../live';
import { navigate } from '../router';
import type { Alert } from '../types';
import { LevelBadge } from './level-badge';

const FRESH_MS = 10_000;

interface RowProps {
  alert: Alert;
  isFresh: boolean;
  lang: string;
}

class AlertRow extends Component<RowProps> {
  override shouldComponentUpdate(next: RowProps): boolean {
    return next.alert !== this.props.alert || next.isFresh !== this.props.isFresh || next.lang !== this.props.lang;
  }

  override render() {
    const { alert: a, isFresh } = this.props;
    const href = `/console/alerts/${encodeURIComponent(a.id)}`;
    return (
      <tr
        class={`row-${a.level} state-${a.state}${isFresh ? ' fresh' : ''}`}
        data-testid="alert-row"
        data-alert-id={a.id}
        data-asset-id={a.asset_id}
        data-state={a.state}
        onClick={() => navigate(href)}
      >
        <td>
          <LevelBadge level={a.level} />
        </td>
        <td>
          <a href={href} onClick={(e) => e.preventDefault()}>
            {a.asset_name}
          </a>
          <div class="muted small">
            {a.asset_id} · {a.sensor_id}
          </div>
        </td>
        <td>{a.street}</td>
        <td>{a.rule_name}</td>
        <td class="num">
          {formatNumber(a.value)} <span class="muted small">{a.metric}</span>
        </td>
        <td data-testid="alert-state">{t(`state.${a.state}`)}</td>
        <td>
          {t(`case.${a.case?.status ?? 'new'}`)}
          {a.case?.department ? <div class="muted small">{a.case.department}</div> : null}
        </td>
        <td class="small">{formatTime(a.started_at)}</td>
      </tr>
    );
  }
}

export function AlertTable(props: { alerts: Alert[] }) {
  const now = Date.now();
  if (props.alerts.length === 0)
    return (
      <p class="empty" data-testid="board-empty">
        {t('board.empty')}
      </p>
    );
  return (
    <table class="alerts" data-testid="board">
      <thead>
        <tr>
          <th>{t('alert.level')}</th>
          <th>{t('alert.asset')}</th>
          <th>{t('alert.street')}</th>
          <th>{t('alert.rule')}</th>
          <th>{t('alert.value')}</th>
          <th>{t('alert.state')}</th>
          <th>{t('alert.case')}</th>
          <th>{t('alert.started')}</th>
        </tr>
      </thead>
      <tbody>
        {props.alerts.map((a) => (
          <AlertRow key={a.id} alert={a} isFresh={now - (fresh.get(a.id) ?? 0) < FRESH_MS} lang={language.value} />
        ))}
      </tbody>
    </table>
  );
}
