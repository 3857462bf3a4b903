/** The top bar: pages, the stream's state, mute, language and the signed-in token. */
import { signOut } from '../api';
import { setLanguage, t, language } from '../i18n';
import { connection } from '../live';
import { muted, setMuted } from '../sound';
import { useStore } from '../store';
import type { Session } from '../types';
import { Link } from './link';

const PAGES = [
  ['board', '/console', 'nav.board'],
  ['map', '/console/map', 'nav.map'],
  ['work-orders', '/console/work-orders', 'nav.work_orders'],
  ['oncall', '/console/oncall', 'nav.oncall'],
  ['devices', '/console/devices', 'nav.devices'],
  ['silences', '/console/silences', 'nav.silences'],
] as const;

export function Nav(props: { session: Session; route: string }) {
  const live = useStore(connection);
  const isMuted = useStore(muted);
  const lang = useStore(language);
  return (
    <header class="nav">
      <span class="brand">{t('app.title')}</span>
      <nav>
        {PAGES.map(([page, href, label]) => (
          <Link href={href} class={props.route === page || (page === 'board' && props.route === 'alert') ? 'active' : ''} testId={`nav-${page}`}>
            {t(label)}
          </Link>
        ))}
      </nav>
      <span class={`conn conn-${live}`} data-testid="connection" title={t(`conn.${live}`)}>
        ● {t(`conn.${live}`)}
      </span>
      <button type="button" class="ghost" data-testid="mute" onClick={() => setMuted(!isMuted)}>
        {isMuted ? t('nav.unmute') : t('nav.mute')}
      </button>
      <button type="button" class="ghost" data-testid="language" onClick={() => setLanguage(lang === 'en' ? 'zh-CN' : 'en')}>
        {lang === 'en' ? '中文' : 'English'}
      </button>
      <span class="who" data-testid="who">
        {props.session.name} · {t(`role.${props.session.role}`)}
      </span>
      <button type="button" class="ghost" data-testid="sign-out" onClick={() => void signOut()}>
        {t('nav.sign_out')}
      </button>
    </header>
  );
}
