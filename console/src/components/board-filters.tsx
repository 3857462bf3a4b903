/** The board's filters: street, level, department, case status, and whether resolved alerts show. */
import { t } from '../i18n';
import { CASE_STATUSES, LEVELS } from '../types';

export interface Filters {
  street: string;
  level: string;
  department: string;
  status: string;
}

export const NO_FILTERS: Filters = { street: '', level: '', department: '', status: '' };

export function BoardFilters(props: { filters: Filters; streets: string[]; departments: string[]; onChange: (f: Filters) => void }) {
  const { filters, onChange } = props;
  const select = (key: keyof Filters, options: Array<[string, string]>) => (
    <label>
      {t(`filter.${key}`)}
      <select value={filters[key]} data-testid={`filter-${key}`} onChange={(e) => onChange({ ...filters, [key]: e.currentTarget.value })}>
        <option value="">{t('filter.all')}</option>
        {options.map(([value, label]) => (
          <option value={value}>{label}</option>
        ))}
      </select>
    </label>
  );
  return (
    <div class="filters">
      {select(
        'street',
        props.streets.map((s) => [s, s]),
      )}
      {select(
        'level',
        LEVELS.map((l) => [l, t(`level.${l}`)]),
      )}
      {select(
        'department',
        props.departments.map((d) => [d, d]),
      )}
      {select(
        'status',
        CASE_STATUSES.map((s) => [s, t(`case.${s}`)]),
      )}
    </div>
  );
}
