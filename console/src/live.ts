/**
 * The live alert state: the open alerts (and resolved ones whose case is still being worked),
 * fetched from GET /api/v1/alerts and kept current by GET /api/v1/stream (server-sent events).
 * The lists are fetched at once and again after the stream's `ready` (events arriving during a
 * fetch are applied after it). EventSource reconnects by itself with Last-Event-ID, and the server
 * replays what was missed; a `reset` (too much missed) refetches. A new or raised red alarm rings unless muted.
 */
import { api } from './api';
import { ring } from './sound';
import { Store } from './store';
import type { Alert, AlertEvent } from './types';

export const alerts = new Store<Map<string, Alert>>(new Map());
export const connection = new Store<'connecting' | 'live' | 'down'>('connecting');
/** Alert ids that changed, for the views that show one alert (the detail refetches its timeline). */
export const changed = new Store<{ id: string; seq: number }>({ id: '', seq: 0 });
/** The time each alert was last seen on the stream: a new one is highlighted on the board. */
export const fresh = new Map<string, number>();

const FINAL_CASE = ['dismissed', 'closed'];
/** Shown on the board: not resolved, or resolved with a case still being worked. */
export const onBoard = (a: Alert) => a.state !== 'resolved' || (a.case !== undefined && !FINAL_CASE.includes(a.case.status) && a.case.status !== 'new');

let source: EventSource | undefined;
let loading: Promise<void> | undefined;
let pending: AlertEvent[] | undefined;
let seq = 0;

async function load(): Promise<void> {
  pending = [];
  const [firing, acknowledged, resolved] = await Promise.all([
    api<{ alerts: Alert[] }>('GET', '/api/v1/alerts?state=firing&limit=1000'),
    api<{ alerts: Alert[] }>('GET', '/api/v1/alerts?state=acknowledged&limit=1000'),
    api<{ alerts: Alert[] }>('GET', '/api/v1/alerts?state=resolved&limit=200'),
  ]);
  const next = new Map<string, Alert>();
  for (const a of [...firing.alerts, ...acknowledged.alerts, ...resolved.alerts.filter(onBoard)]) next.set(a.id, a);
  const during = pending;
  pending = undefined;
  alerts.set(next);
  for (const e of during) apply(e, false);
}

let again = false;

/**
 * Fetches the lists; when asked again while a fetch is under way, fetches once more after it, so
 * that the last snapshot is always taken after the stream's `ready` (nothing falls between them).
 */
export function refetch(): void {
  if (loading) {
    again = true;
    return;
  }
  loading = load()
    .catch(() => undefined)
    .finally(() => {
      loading = undefined;
      if (again) {
        again = false;
        refetch();
      }
    });
}

function apply(event: AlertEvent, live: boolean): void {
  if (pending) {
    pending.push(event);
    return;
  }
  const previous = alerts.value.get(event.alert.id);
  const merged: Alert = { ...previous, ...event.alert };
  if (event.event === 'acknowledged') merged.acknowledged_by = (event as { actor?: string }).actor ?? previous?.acknowledged_by ?? null;
  const next = new Map(alerts.value);
  if (onBoard(merged)) next.set(merged.id, merged);
  else next.delete(merged.id);
  fresh.set(merged.id, Date.now());
  alerts.set(next);
  changed.set({ id: merged.id, seq: ++seq });
  if (live && merged.level === 'red' && merged.state === 'firing' && (event.event === 'firing' || event.event === 'level_raised' || event.event === 'repeated')) ring();
}

export function connect(): void {
  if (source) return;
  connection.set('connecting');
  // The board draws from a first fetch at once; the one after `ready` makes it exact.
  refetch();
  const es = new EventSource('/api/v1/stream');
  source = es;
  es.addEventListener('ready', () => {
    connection.set('live');
    refetch();
  });
  es.addEventListener('reset', () => refetch());
  es.addEventListener('alert', (message) => {
    try {
      apply(JSON.parse((message as MessageEvent<string>).data) as AlertEvent, true);
    } catch {
      // not an alert event body: ignored
    }
  });
  es.addEventListener('error', () => {
    connection.set('down');
    // A refused stream (401: the session ended) is not retried by EventSource itself.
    if (es.readyState === EventSource.CLOSED) {
      disconnect();
      setTimeout(() => {
        void api('GET', '/console/session').then(connect, () => undefined);
      }, 3000);
    }
  });
}

export function disconnect(): void {
  source?.close();
  source = undefined;
  connection.set('down');
}
