/** An API error as the API put it: its message (and code). */
import { ApiFailure } from '../api';
import { t } from '../i18n';

export function ErrorMessage(props: { error: unknown }) {
  if (!props.error) return null;
  const e = props.error;
  const text = e instanceof ApiFailure ? (e.status === 0 ? t('error.network', { message: e.message }) : `${e.message} (${e.code})`) : String((e as Error).message ?? e);
  return (
    <div class="error" role="alert" data-testid="error">
      {text}
    </div>
  );
}
