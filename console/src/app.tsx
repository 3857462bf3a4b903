/** The console's frame: sign-in until there is a session, then the navigation and the page of the route. */
import { useEffect } from 'preact/hooks';
import { session } from './api';
import { Nav } from './components/nav';
import { language } from './i18n';
import { connect, disconnect } from './live';
import { AlertPage } from './pages/alert-page';
import { BoardPage } from './pages/board-page';
import { DevicesPage } from './pages/devices-page';
import { MapPage } from './pages/map-page';
import { NotFoundPage } from './pages/not-found-page';
import { OnCallPage } from './pages/oncall-page';
import { SignInPage } from './pages/sign-in-page';
import { SilencesPage } from './pages/silences-page';
import { WorkOrdersPage } from './pages/work-orders-page';
import { match, path } from './router';
import { useStore } from './store';
import { unlock } from './sound';

export function App() {
  const current = useStore(session);
  const pathname = useStore(path);
  useStore(language);
  useEffect(() => {
    const gesture = () => unlock();
    addEventListener('pointerdown', gesture);
    return () => removeEventListener('pointerdown', gesture);
  }, []);
  const signedIn = current !== null && current !== 'unknown';
  useEffect(() => {
    if (signedIn) connect();
    else disconnect();
  }, [signedIn]);

  if (current === 'unknown') return <div class="loading" />;
  if (current === null) return <SignInPage />;
  const route = match(pathname);
  return (
    <div class="frame">
      <Nav session={current} route={route.page} />
      <main>
        {route.page === 'board' && <BoardPage />}
        {route.page === 'alert' && <AlertPage id={route.id} key={route.id} />}
        {route.page === 'map' && <MapPage session={current} />}
        {route.page === 'silences' && <SilencesPage />}
        {route.page === 'work-orders' && <WorkOrdersPage />}
        {route.page === 'oncall' && <OnCallPage />}
        {route.page === 'devices' && <DevicesPage />}
        {route.page === 'not-found' && <NotFoundPage path={route.path} />}
      </main>
    </div>
  );
}
