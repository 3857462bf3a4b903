/** Who is on call now and next, per schedule. */
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { ErrorMessage } from '../components/error-message';
import { formatTime, t } from '../i18n';
import type { OnCall } from '../types';

export function OnCallPage() {
  const [schedules, setSchedules] = useState<OnCall[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    const load = () => api<{ oncall?: OnCall[]; schedules?: OnCall[] }>('GET', '/api/v1/oncall').then((o) => setSchedules(o.oncall ?? o.schedules ?? []), setError);
    void load();
    const timer = setInterval(() => void load(), 60_000);
    return () => clearInterval(timer);
  }, []);
  if (!schedules) return <section>{error ? <ErrorMessage error={error} /> : <div class="loading" />}</section>;
  return (
    <section>
      <h2>{t('oncall.title')}</h2>
      {schedules.length === 0 && <p class="muted">{t('oncall.none')}</p>}
      <div class="cards">
        {schedules.map((s) => (
          <div class="card" data-testid="oncall">
            <h3>{s.schedule}</h3>
            <p>
              <strong>{t('oncall.now')}</strong> {s.current.name}{' '}
              <span class="muted small">
                ({formatTime(s.current.from)} – {formatTime(s.current.until)})
              </span>
            </p>
            <p>
              <strong>{t('oncall.next')}</strong> {s.next.name}{' '}
              <span class="muted small">
                ({formatTime(s.next.from)} – {formatTime(s.next.until)})
              </span>
            </p>
            <p class="muted small">{s.time_zone}</p>
          </div>
        ))}
      </div>
    </section>
  );
}
