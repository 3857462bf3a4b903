/** Routes under /console, with the History API (the server answers index.html for every /console path). */
import { Store } from './store';

export const BASE = '/console';
export const path = new Store<string>(location.pathname);

export function navigate(to: string): void {
  if (to === location.pathname + location.search) return;
  history.pushState(null, '', to);
  path.set(location.pathname);
}

addEventListener('popstate', () => path.set(location.pathname));

export type Route =
  | { page: 'board' }
  | { page: 'alert'; id: string }
  | { page: 'map' }
  | { page: 'silences' }
  | { page: 'work-orders' }
  | { page: 'oncall' }
  | { page: 'devices' }
  | { page: 'not-found'; path: string };

export function match(pathname: string): Route {
  const p = pathname.replace(/\/+$/, '') || '/';
  if (p === BASE) return { page: 'board' };
  const alert = /^\/console\/alerts\/([^/]+)$/.exec(p);
  if (alert) {
    try {
      return { page: 'alert', id: decodeURIComponent(alert[1]!) };
    } catch {
      return { page: 'not-found', path: pathname };
    }
  }
  if (p === `${BASE}/map`) return { page: 'map' };
  if (p === `${BASE}/silences`) return { page: 'silences' };
  if (p === `${BASE}/work-orders`) return { page: 'work-orders' };
  if (p === `${BASE}/oncall`) return { page: 'oncall' };
  if (p === `${BASE}/devices`) return { page: 'devices' };
  return { page: 'not-found', path: pathname };
}
