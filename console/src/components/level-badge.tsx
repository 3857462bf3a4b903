import { t } from '../i18n';
import type { Level } from '../types';

export function LevelBadge(props: { level: Level | null }) {
  if (!props.level) return <span class="badge badge-none">{t('level.none')}</span>;
  return <span class={`badge badge-${props.level}`}>{t(`level.${props.level}`)}</span>;
}
