/**
 * The live alert state: the open alerts (and resolved ones whose case is still being worked),
 * fetched from GET /api/v1/alerts in the board view and kept current by GET /api/v1/stream
 * (server-sent events). The lists are fetched as the page starts (beside the session check) and
 * again after the stream's `ready` (events arriving during a fetch are applied after it; rows that
 * did not change keep their object, so the board does not draw them again). EventSource
 * reconnects by itself with Last-Event-ID, and the server replays what was missed; a `reset` (too
 * much missed) refetches. A new or raised red alarm rings unless muted.
 */
import { api, apiAnswer } from './api';
import { ring } from './sound';
import { Store } from './store';
import type { Alert, AlertEvent, BoardAlert } from './types';

export const alerts = new Store<Map<string, BoardAlert>>(new Map());
export const connection = new Store<'connecting' | 'live' | 'down'>('connecting');
/** Alert ids that changed, for the views that show one alert (the detail refetches its timeline). */
export const changed = new Store<{ id: string; seq: number }>({ id: '', seq: 0 });
/** The time each alert was last seen on the stream: a new one is highlighted on the board. */
export const fresh = new Map<string, number>();

const FINAL_CASE = ['dismissed', 'closed'];
/** Shown on the board: not resolved, or resolved with a case still being worked. */
export const onBoard = (a: BoardAlert) => a.state !== 'resolved' || (!FINAL_CASE.includes(a.case.status) && a.case.status !== 'new');

/** The board's fields of an alert (an event carries the whole alert). */
export function boardAlert(a: BoardAlert | Alert): BoardAlert {
  return {
    id: a.id,
    rule_name: a.rule_name,
    level: a.level,
    state: a.state,
    asset_id: a.asset_id,
    asset_name: a.asset_name,
    street: a.street,
    sensor_id: a.sensor_id,
    metric: a.metric,
    value: a.value,
    started_at: a.started_at,
    case: { status: a.case?.status ?? 'new', department: a.case?.department ?? null },
  };
}

function same(a: BoardAlert, b: BoardAlert): boolean {
  return (
    a.level === b.level &&
    a.state === b.state &&
    a.value === b.value &&
    a.case.status === b.case.status &&
    a.case.department === b.case.department &&
    a.rule_name === b.rule_name &&
    a.asset_name === b.asset_name &&
    a.street === b.street &&
    a.asset_id === b.asset_id &&
    a.sensor_id === b.sensor_id &&
    a.metric === b.metric &&
    a.started_at === b.started_at
  );
}

let source: EventSource | undefined;
/** connect() waits for the lists before it opens the stream. */
let opening = false;
let loading: Promise<number | undefined> | undefined;
let pending: AlertEvent[] | undefined;
let seq = 0;

/** The stream's last event id when a list was read (GET /api/v1/alerts answers it). */
const STREAM_ID_HEADER = 'x-stream-event-id';
const LISTS = ['/api/v1/alerts?state=firing&limit=1000&view=board', '/api/v1/alerts?state=acknowledged&limit=1000&view=board', '/api/v1/alerts?state=resolved&limit=200&view=board'];

/** Fetches the lists; resolves with the stream's event id they were read at (the oldest of them), if the answers carry it. */
async function load(): Promise<number | undefined> {
  pending = [];
  try {
    const answers = await Promise.all(LISTS.map((path) => apiAnswer<{ alerts: BoardAlert[] }>('GET', path)));
    const [firing, acknowledged, resolved] = answers.map((a) => a.data.alerts) as [BoardAlert[], BoardAlert[], BoardAlert[]];
    const previous = alerts.value;
    const next = new Map<string, BoardAlert>();
    for (const a of [...firing, ...acknowledged, ...resolved.filter(onBoard)]) {
      const before = previous.get(a.id);
      next.set(a.id, before && same(before, a) ? before : a);
    }
    alerts.set(next);
    const ids = answers.map((a) => a.headers.get(STREAM_ID_HEADER) ?? '');
    return ids.every((id) => /^\d{1,16}$/.test(id)) ? Math.min(...ids.map(Number)) : undefined;
  } finally {
    // Events that arrived during the fetch, after it (also when it failed: they are newer than what is shown).
    const during = pending;
    pending = undefined;
    for (const e of during) apply(e, false);
  }
}

let again = false;

/**
 * Fetches the lists; when asked again while a fetch is under way, fetches once more after it, so
 * that the last snapshot is always taken after what asked for it (a `reset`, the stream's `ready`).
 */
export function refetch(): Promise<number | undefined> {
  if (loading) {
    again = true;
    return loading;
  }
  const current = load()
    .catch(() => undefined)
    .finally(() => {
      loading = undefined;
      if (again) {
        again = false;
        void refetch();
      }
    });
  loading = current;
  return current;
}

function apply(event: AlertEvent, live: boolean): void {
  if (pending) {
    pending.push(event);
    return;
  }
  const merged = boardAlert(event.alert);
  const next = new Map(alerts.value);
  if (onBoard(merged)) next.set(merged.id, merged);
  else next.delete(merged.id);
  fresh.set(merged.id, Date.now());
  alerts.set(next);
  changed.set({ id: merged.id, seq: ++seq });
  if (live && merged.level === 'red' && merged.state === 'firing' && (event.event === 'firing' || event.event === 'level_raised' || event.event === 'repeated')) ring();
}

/** Fetches the lists as the page starts, while the session is still being checked (an answer 401 shows the sign-in). */
export function prefetch(): void {
  void refetch();
}

/**
 * Draws the board from the lists at once (the page's prefetch, if still under way), then opens the
 * stream from the event id the lists were read at: the server sends every change since, so nothing
 * falls between the lists and the stream, and the lists are not fetched twice.
 */
export function connect(): void {
  if (source || opening) return;
  connection.set('connecting');
  opening = true;
  void (loading ?? refetch()).then((after) => {
    if (!opening) return; // disconnected meanwhile
    opening = false;
    open(after);
  });
}

function open(after: number | undefined): void {
  // EventSource sends Last-Event-ID itself when it reconnects, and the server prefers it to the query.
  const es = new EventSource(after === undefined ? '/api/v1/stream' : `/api/v1/stream?last_event_id=${after}`);
  source = es;
  es.addEventListener('ready', () => {
    connection.set('live');
    // Without the lists' event id, lists read after `ready` make the board exact.
    if (after === undefined) void refetch();
  });
  es.addEventListener('reset', () => void refetch());
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
  opening = false;
  source?.close();
  source = undefined;
  connection.set('down');
}
