/** Silences: the ones in force and coming, and a form to add one (operator). */
import { useEffect, useState } from 'preact/hooks';
import { api, canAct, session } from '../api';
import { ErrorMessage } from '../components/error-message';
import { useDraft } from '../drafts';
import { formatTime, t } from '../i18n';
import { useStore } from '../store';
import type { Silence } from '../types';

const localInput = (ms: number) => {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
};

export function SilencesPage() {
  const current = useStore(session);
  const [silences, setSilences] = useState<Silence[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [formError, setFormError] = useState<unknown>(null);
  const [key, setKey] = useState('asset_id');
  const [value, setValue] = useState('');
  const [starts, setStarts] = useState(() => localInput(Date.now()));
  const [ends, setEnds] = useState(() => localInput(Date.now() + 3_600_000));
  const [reason, setReason, clearReason] = useDraft('silence.reason');
  const operator = canAct(current);

  const load = () =>
    api<{ silences: Silence[] }>('GET', '/api/v1/silences').then((s) => {
      setSilences(s.silences.filter((x) => x.state !== 'expired'));
      setError(null);
    }, setError);
  useEffect(() => {
    void load();
  }, []);

  const create = async (e: Event) => {
    e.preventDefault();
    setFormError(null);
    try {
      await api('POST', '/api/v1/silences', { matchers: { [key]: value.trim() }, starts_at: new Date(starts).toISOString(), ends_at: new Date(ends).toISOString(), reason: reason.trim() });
      clearReason();
      setValue('');
      await load();
    } catch (err) {
      setFormError(err);
    }
  };
  const remove = async (id: string) => {
    try {
      await api('DELETE', `/api/v1/silences/${encodeURIComponent(id)}`);
      await load();
    } catch (err) {
      setError(err);
    }
  };

  return (
    <section>
      <h2>{t('silences.title')}</h2>
      <ErrorMessage error={error} />
      {silences && silences.length === 0 && <p class="muted">{t('silences.none')}</p>}
      {silences && silences.length > 0 && (
        <table class="list" data-testid="silences">
          <thead>
            <tr>
              <th>{t('silences.matchers')}</th>
              <th>{t('silences.window')}</th>
              <th>{t('silences.reason')}</th>
              <th>{t('silences.by')}</th>
              <th>{t('silences.state')}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {silences.map((s) => (
              <tr>
                <td>
                  {Object.entries(s.matchers)
                    .map(([k, v]) => `${k}=${v.join('|')}`)
                    .join(', ')}
                </td>
                <td class="small">
                  {formatTime(s.starts_at)} – {formatTime(s.ends_at)}
                </td>
                <td>{s.reason}</td>
                <td>{s.created_by}</td>
                <td>{t(`silence.${s.state}`)}</td>
                <td>
                  {operator && (
                    <button type="button" class="ghost" onClick={() => void remove(s.id)}>
                      {t('silences.end')}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {operator && (
        <form class="card form" onSubmit={(e) => void create(e)} data-testid="silence-form">
          <h3>{t('silences.new')}</h3>
          <label>
            {t('silences.match')}
            <select value={key} onChange={(e) => setKey(e.currentTarget.value)}>
              {['asset_id', 'rule_id', 'street', 'level', 'sensor_id'].map((k) => (
                <option value={k}>{k}</option>
              ))}
            </select>
          </label>
          <label>
            {t('silences.value')}
            <input value={value} required onInput={(e) => setValue(e.currentTarget.value)} />
          </label>
          <label>
            {t('silences.starts')}
            <input type="datetime-local" value={starts} required onInput={(e) => setStarts(e.currentTarget.value)} />
          </label>
          <label>
            {t('silences.ends')}
            <input type="datetime-local" value={ends} required onInput={(e) => setEnds(e.currentTarget.value)} />
          </label>
          <label class="wide">
            {t('silences.reason')}
            <input value={reason} required onInput={(e) => setReason(e.currentTarget.value)} />
          </label>
          <button type="submit" class="primary">
            {t('silences.create')}
          </button>
          <ErrorMessage error={formError} />
        </form>
      )}
    </section>
  );
}
