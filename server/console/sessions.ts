/**
 * Console sessions: a signed-in API token becomes a random session id in an HttpOnly,
 * SameSite=Strict cookie, kept here (in memory: a restart signs everyone out) with its CSRF
 * token. A session ends after `idleMs` without a request, `maxMs` after sign-in, at sign-out, or
 * when the oldest has to make room (`maxSessions`).
 *
 * Only a digest of the session id is kept, so a heap dump does not hand out live sessions.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from '../../lib/clock.js';
import type { Role } from '../config/schema.js';

export const SESSION_COOKIE = 'watchpost_session';
export const CSRF_HEADER = 'x-csrf-token';

export interface SessionOptions {
  idleMs: number;
  maxMs: number;
  maxSessions: number;
}

export interface Session {
  /** The API token's name: the actor of what the session does. */
  name: string;
  role: Role;
  csrfToken: string;
  createdAt: number;
  lastSeenAt: number;
}

/** What sign-in hands out: the cookie's value and the CSRF token the page sends back. */
export interface NewSession {
  id: string;
  session: Session;
}

const digest = (id: string) => createHash('sha256').update(id).digest('base64url');
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

export class SessionStore {
  /** By digest of the id, in creation order (Map keeps insertion order: the first is the oldest). */
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly clock: Clock,
    private readonly options: SessionOptions,
  ) {}

  create(principal: { name: string; role: Role }): NewSession {
    const now = this.clock.now();
    this.sweep(now);
    while (this.sessions.size >= this.options.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    const session: Session = { name: principal.name, role: principal.role, csrfToken: randomBytes(32).toString('base64url'), createdAt: now, lastSeenAt: now };
    this.sessions.set(digest(id), session);
    return { id, session };
  }

  /** The live session of a cookie value, its idle time restarted; undefined when there is none or it has expired. */
  touch(id: string): Session | undefined {
    if (!SESSION_ID.test(id)) return undefined;
    const key = digest(id);
    const session = this.sessions.get(key);
    if (!session) return undefined;
    const now = this.clock.now();
    if (this.expired(session, now)) {
      this.sessions.delete(key);
      return undefined;
    }
    session.lastSeenAt = now;
    return session;
  }

  end(id: string): boolean {
    return SESSION_ID.test(id) && this.sessions.delete(digest(id));
  }

  /** Sessions of tokens that are no longer configured end (a reload removed or changed them). */
  retain(keep: (session: Session) => boolean): void {
    for (const [key, session] of this.sessions) if (!keep(session)) this.sessions.delete(key);
  }

  size(): number {
    return this.sessions.size;
  }

  private expired(session: Session, now: number): boolean {
    return now - session.lastSeenAt >= this.options.idleMs || now - session.createdAt >= this.options.maxMs;
  }

  private sweep(now: number): void {
    for (const [key, session] of this.sessions) if (this.expired(session, now)) this.sessions.delete(key);
  }
}

/** The value of one cookie in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The Set-Cookie header of a session (maxAgeSeconds 0 clears it). */
export function sessionCookie(value: string, options: { secure: boolean; maxAgeSeconds: number }): string {
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${options.maxAgeSeconds}${options.secure ? '; Secure' : ''}`;
}
