import { Link } from '../components/link';
import { t } from '../i18n';

export function NotFoundPage(props: { path: string }) {
  return (
    <section class="not-found" data-testid="not-found">
      <h2>{t('notfound.title')}</h2>
      <p>{t('notfound.text', { path: props.path })}</p>
      <Link href="/console">{t('notfound.back')}</Link>
    </section>
  );
}
