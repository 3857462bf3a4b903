/**
 * The disposal loop's actions on one alert, offered by role and state: acknowledge, resolve,
 * verify, dismiss with a reason, dispatch to a department, close. The server checks the role and
 * the state again; its refusal is shown as it put it. The note is a draft in sessionStorage.
 */
import { useState } from 'preact/hooks';
import { api } from '../api';
import { useDraft } from '../drafts';
import { t } from '../i18n';
import { DISMISS_REASONS, type Alert } from '../types';
import { ErrorMessage } from './error-message';

type Action = 'ack' | 'resolve' | 'verify' | 'dismiss' | 'dispatch' | 'close';
const FINAL = ['dismissed', 'closed'];

export function actionsFor(alert: Alert): Action[] {
  const status = alert.case?.status ?? 'new';
  const open = !FINAL.includes(status);
  const out: Action[] = [];
  if (alert.state === 'firing') out.push('ack');
  if (open && (status === 'new' || status === 'acknowledged')) out.push('verify');
  if (open && status !== 'dispatched' && status !== 'on_site') out.push('dispatch');
  if (open) out.push('dismiss');
  if (alert.state !== 'resolved') out.push('resolve');
  if (open) out.push('close');
  return out;
}

export function ActionPanel(props: { alert: Alert; departments: string[]; onDone: () => void }) {
  const { alert } = props;
  const [note, setNote, clearNote] = useDraft(`note.${alert.id}`);
  const [reason, setReason] = useState<string>('sensor_fault');
  const [department, setDepartment] = useState('');
  const [due, setDue] = useState('');
  const [outcome, setOutcome] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<Action | null>(null);
  const actions = actionsFor(alert);

  const run = async (action: Action) => {
    const body: Record<string, string> = {};
    if (note.trim()) body.note = note.trim();
    if (action === 'dismiss') body.reason = reason;
    if (action === 'dispatch') {
      if (department.trim()) body.department = department.trim();
      if (due.trim()) body.due = due.trim();
    }
    if (action === 'close' && outcome.trim()) body.outcome = outcome.trim();
    setBusy(action);
    setError(null);
    try {
      await api('POST', `/api/v1/alerts/${encodeURIComponent(alert.id)}/${action}`, body);
      clearNote();
      props.onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };
  const button = (action: Action, primary = false) =>
    actions.includes(action) ? (
      <button type="button" class={primary ? 'primary' : ''} disabled={busy !== null} data-testid={`action-${action}`} onClick={() => void run(action)}>
        {t(`action.${action}`)}
      </button>
    ) : null;

  if (actions.length === 0) return <p class="muted">{t('action.none')}</p>;
  return (
    <div class="actions" data-testid="actions">
      <label class="wide">
        {t('action.note')}
        <textarea rows={2} maxLength={2000} value={note} data-testid="note" onInput={(e) => setNote(e.currentTarget.value)} />
      </label>
      <div class="buttons">
        {button('ack', true)}
        {button('verify')}
        {button('resolve')}
      </div>
      {actions.includes('dismiss') && (
        <div class="buttons">
          <select value={reason} data-testid="dismiss-reason" onChange={(e) => setReason(e.currentTarget.value)}>
            {DISMISS_REASONS.map((r) => (
              <option value={r}>{t(`reason.${r}`)}</option>
            ))}
          </select>
          {button('dismiss')}
        </div>
      )}
      {actions.includes('dispatch') && (
        <div class="buttons">
          <input list="departments" placeholder={t('action.department')} value={department} data-testid="dispatch-department" onInput={(e) => setDepartment(e.currentTarget.value)} />
          <datalist id="departments">
            {props.departments.map((d) => (
              <option value={d} />
            ))}
          </datalist>
          <input placeholder={t('action.due')} value={due} size={8} data-testid="dispatch-due" onInput={(e) => setDue(e.currentTarget.value)} />
          {button('dispatch')}
        </div>
      )}
      {actions.includes('close') && (
        <div class="buttons">
          <input placeholder={t('action.outcome')} value={outcome} data-testid="close-outcome" onInput={(e) => setOutcome(e.currentTarget.value)} />
          {button('close')}
        </div>
      )}
      <ErrorMessage error={error} />
    </div>
  );
}
