/**
 * The board's rows: one per alert, coloured by level; a click opens the alert. Rows re-render only
 * when their alert changes. A long board is drawn a screenful first and the rest in the task after,
 * so the first rows show without waiting for a thousand.
 */
import { Component } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { formatNumber, formatTime, language, t } from '../i18n';
import { fresh } from '../live';
import { navigate } from '../router';
import type { BoardAlert } from '../types';
import { LevelBadge } from './level-badge';

const FRESH_MS = 10_000;
/** Rows drawn in the first frame (more than a screen holds); the rest in the task after it (each drawing lays out the table again). */
const FIRST_ROWS = 40;

interface RowProps {
  alert: BoardAlert;
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
          {t(`case.${a.case.status}`)}
          {a.case.department ? <div class="muted small">{a.case.department}</div> : null}
        </td>
        <td class="small">{formatTime(a.started_at)}</td>
      </tr>
    );
  }
}

export function AlertTable(props: { alerts: BoardAlert[] }) {
  const now = Date.now();
  // How many rows are drawn, until all of them have been once (later changes draw at once).
  const [drawn, setDrawn] = useState(FIRST_ROWS);
  const complete = drawn === Infinity;
  useEffect(() => {
    if (complete || props.alerts.length === 0) return;
    const timer = setTimeout(() => setDrawn(Infinity), 0);
    return () => clearTimeout(timer);
  }, [complete, props.alerts.length === 0]);
  const rows = complete ? props.alerts : props.alerts.slice(0, drawn);
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
        {rows.map((a) => (
          <AlertRow key={a.id} alert={a} isFresh={now - (fresh.get(a.id) ?? 0) < FRESH_MS} lang={language.value} />
        ))}
      </tbody>
    </table>
  );
}
