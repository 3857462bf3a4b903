/**
 * The console's client of the HTTP API: the same routes everyone uses, signed in by the session
 * cookie; state-changing requests carry the session's CSRF token. An answer 401 means the session
 * has ended: the sign-in page shows (drafts stay in sessionStorage).
 */
import { Store } from './store';
import type { Session } from './types';

export const session = new Store<Session | null | 'unknown'>('unknown');

export class ApiFailure extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
  }
}

export async function api<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  return (await apiAnswer<T>(method, path, body)).data;
}

/** The answer's body with its headers. */
export async function apiAnswer<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<{ data: T; headers: Headers }> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const current = session.value;
  if (method !== 'GET' && current && current !== 'unknown') headers['x-csrf-token'] = current.csrf_token;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiFailure(`${(err as Error).message}`, 0, 'network');
  }
  const text = await res.text();
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON (a proxy's error page): the status speaks
  }
  if (!res.ok) {
    const error = (data ?? {}) as { error?: string; message?: string };
    if (res.status === 401 && path !== '/console/session') session.set(null);
    throw new ApiFailure(error.message ?? `${res.status} ${res.statusText}`, res.status, error.error ?? 'http_error');
  }
  return { data: data as T, headers: res.headers };
}

export async function restoreSession(): Promise<void> {
  try {
    session.set(await api<Session>('GET', '/console/session'));
  } catch {
    session.set(null);
  }
}

export async function signIn(token: string): Promise<void> {
  session.set(await api<Session>('POST', '/console/session', { token }));
}

export async function signOut(): Promise<void> {
  try {
    await api('DELETE', '/console/session');
  } finally {
    session.set(null);
  }
}

export const canAct = (s: Session | null | 'unknown'): boolean => !!s && s !== 'unknown' && (s.role === 'operator' || s.role === 'admin');
