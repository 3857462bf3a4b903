/** Sign-in with an API token; the token is sent once and never stored in the browser. */
import { useState } from 'preact/hooks';
import { signIn } from '../api';
import { ErrorMessage } from '../components/error-message';
import { language, setLanguage, t } from '../i18n';
import { useStore } from '../store';

export function SignInPage() {
  const [token, setToken] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const lang = useStore(language);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(token.trim());
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="sign-in">
      <form onSubmit={(e) => void submit(e)} data-testid="sign-in">
        <h1>{t('app.title')}</h1>
        <p class="muted">{t('signin.hint')}</p>
        <label>
          {t('signin.token')}
          <input type="password" autocomplete="current-password" value={token} onInput={(e) => setToken(e.currentTarget.value)} data-testid="token" required />
        </label>
        <button type="submit" disabled={busy || token.trim() === ''} data-testid="sign-in-submit">
          {t('signin.submit')}
        </button>
        <ErrorMessage error={error} />
        <button type="button" class="ghost" onClick={() => setLanguage(lang === 'en' ? 'zh-CN' : 'en')}>
          {lang === 'en' ? '中文' : 'English'}
        </button>
      </form>
    </div>
  );
}
