/** The live alert board: pushed by the stream, highest level first, filtered by street, level, department and case status. */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api } from '../api';
import { AlertTable } from '../components/alert-table';
import { BoardFilters, NO_FILTERS, type Filters } from '../components/board-filters';
import { t } from '../i18n';
import { alerts } from '../live';
import { useStore } from '../store';
import { LEVELS, type Asset, type BoardAlert } from '../types';

const rank = (a: BoardAlert) => LEVELS.indexOf(a.level);
const FILTER_KEY = 'watchpost.board.filters';

function savedFilters(): Filters {
  try {
    return { ...NO_FILTERS, ...(JSON.parse(sessionStorage.getItem(FILTER_KEY) ?? '{}') as Partial<Filters>) };
  } catch {
    return NO_FILTERS;
  }
}

export function BoardPage() {
  const all = useStore(alerts);
  const [filters, setFilters] = useState<Filters>(savedFilters);
  // Re-render once a second while rows are highlighted as new.
  const [, tick] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => tick((n) => n + 1), 5000);
    return () => clearInterval(timer);
  }, []);
  const [assetStreets, setAssetStreets] = useState<string[]>([]);
  // Streets without an alert are offered too; read after the board has drawn (the asset list is large).
  useEffect(() => {
    const timer = setTimeout(() => {
      api<{ assets: Asset[] }>('GET', '/api/v1/assets').then(
        (a) => setAssetStreets(a.assets.map((x) => x.street)),
        () => setAssetStreets([]),
      );
    }, 1500);
    return () => clearTimeout(timer);
  }, []);
  const list = useMemo(() => [...all.values()], [all]);
  const streets = useMemo(() => [...new Set([...assetStreets, ...list.map((a) => a.street)])].sort((a, b) => a.localeCompare(b, 'zh-CN')), [list, assetStreets]);
  const departments = useMemo(() => [...new Set(list.flatMap((a) => (a.case.department ? [a.case.department] : [])))].sort(), [list]);
  const shown = useMemo(
    () =>
      list
        .filter(
          (a) =>
            (!filters.street || a.street === filters.street) &&
            (!filters.level || a.level === filters.level) &&
            (!filters.department || a.case.department === filters.department) &&
            (!filters.status || a.case.status === filters.status),
        )
        .sort((a, b) => rank(a) - rank(b) || (a.state === 'firing' ? 0 : 1) - (b.state === 'firing' ? 0 : 1) || b.started_at.localeCompare(a.started_at)),
    [list, filters],
  );
  const counts = LEVELS.map((l) => [l, list.filter((a) => a.level === l && a.state !== 'resolved').length] as const);
  const change = (f: Filters) => {
    setFilters(f);
    sessionStorage.setItem(FILTER_KEY, JSON.stringify(f));
  };
  return (
    <section>
      <div class="page-head">
        <h2>{t('board.title')}</h2>
        <div class="counts" data-testid="counts">
          {counts.map(([level, n]) => (
            <span class={`count count-${level}`}>
              {t(`level.${level}`)} {n}
            </span>
          ))}
        </div>
      </div>
      <BoardFilters filters={filters} streets={streets} departments={departments} onChange={change} />
      <p class="muted small" data-testid="board-count">
        {t('board.showing', { shown: shown.length, total: list.length })}
      </p>
      <AlertTable alerts={shown} />
    </section>
  );
}
