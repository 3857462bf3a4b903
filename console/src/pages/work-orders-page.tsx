/** Work orders by department, overdue first, then by due time. */
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { ErrorMessage } from '../components/error-message';
import { Link } from '../components/link';
import { TodayReport } from '../components/today-report';
import { formatTime, t } from '../i18n';
import { changed } from '../live';
import { useStore } from '../store';
import type { WorkOrder } from '../types';

const OPEN = (w: WorkOrder) => w.closed_at === null;

export function WorkOrdersPage() {
  const [orders, setOrders] = useState<WorkOrder[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [showClosed, setShowClosed] = useState(false);
  const lastChange = useStore(changed);
  useEffect(() => {
    api<{ work_orders: WorkOrder[] }>('GET', '/api/v1/work-orders').then((w) => {
      setOrders(w.work_orders);
      setError(null);
    }, setError);
  }, [lastChange]);
  if (!orders) return <section>{error ? <ErrorMessage error={error} /> : <div class="loading" />}</section>;
  const shown = orders.filter((w) => showClosed || OPEN(w));
  const byDepartment = new Map<string, WorkOrder[]>();
  for (const w of shown) byDepartment.set(w.department, [...(byDepartment.get(w.department) ?? []), w]);
  const sorted = [...byDepartment].sort(([, a], [, b]) => b.filter((w) => w.overdue).length - a.filter((w) => w.overdue).length);
  return (
    <section>
      <div class="page-head">
        <h2>{t('wo.title')}</h2>
        <label class="inline">
          <input type="checkbox" checked={showClosed} onChange={(e) => setShowClosed(e.currentTarget.checked)} /> {t('wo.show_closed')}
        </label>
      </div>
      <ErrorMessage error={error} />
      <TodayReport />
      {shown.length === 0 && <p class="muted">{t('wo.none')}</p>}
      {sorted.map(([department, list]) => (
        <div class="card" data-testid="wo-department">
          <h3>
            {list[0]!.department_name} <span class="muted small">{department}</span>
          </h3>
          <table class="list">
            <thead>
              <tr>
                <th>{t('wo.status')}</th>
                <th>{t('wo.due')}</th>
                <th>{t('wo.created')}</th>
                <th>{t('wo.note')}</th>
                <th>{t('wo.alert')}</th>
              </tr>
            </thead>
            <tbody>
              {[...list]
                .sort((a, b) => Number(b.overdue) - Number(a.overdue) || a.due_at.localeCompare(b.due_at))
                .map((w) => (
                  <tr class={w.overdue ? 'overdue' : ''}>
                    <td>
                      {t(`wo.status.${w.status}`)}
                      {w.overdue ? <span class="badge badge-red">{t('wo.overdue')}</span> : null}
                    </td>
                    <td class="small">{formatTime(w.due_at)}</td>
                    <td class="small">
                      {formatTime(w.created_at)} · {w.created_by}
                    </td>
                    <td>{w.outcome ?? w.note ?? ''}</td>
                    <td>
                      <Link href={`/console/alerts/${encodeURIComponent(w.alert_id)}`}>{t('wo.open_alert')}</Link>
                    </td>
                  </tr>
                ))}
            </tbody>
          </table>
        </div>
      ))}
    </section>
  );
}
