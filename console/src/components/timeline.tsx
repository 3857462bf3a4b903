/** The alert's timeline: every event (who, note) and delivery, oldest first. */
import { formatNumber, formatTime, t } from '../i18n';
import type { TimelineEntry } from '../types';

const SHOWN = ['by', 'actor', 'note', 'reason', 'department', 'outcome', 'channel', 'outcome_code', 'error', 'value', 'threshold'];

const show = (v: unknown): string => (typeof v === 'number' ? formatNumber(v) : typeof v === 'string' ? v : JSON.stringify(v));

export function Timeline(props: { entries: TimelineEntry[] }) {
  if (props.entries.length === 0) return <p class="muted">{t('detail.no_timeline')}</p>;
  return (
    <ol class="timeline" data-testid="timeline">
      {props.entries.map((e) => (
        <li key={e.seq} class={`tl-${e.kind}`} data-type={e.type}>
          <span class="tl-time">{formatTime(e.at)}</span>
          <span class="tl-type">{t(`event.${e.type}`)}</span>
          {typeof e.level === 'string' ? <span class={`dot dot-${e.level}`} /> : null}
          <span class="tl-detail">
            {SHOWN.filter((k) => e[k] !== undefined && e[k] !== null && e[k] !== '').map((k) => (
              <span class="kv">
                {t(`field.${k}`)}: {show(e[k])}
              </span>
            ))}
          </span>
        </li>
      ))}
    </ol>
  );
}
